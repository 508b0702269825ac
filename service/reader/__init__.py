"""The FHIR reader: a patient's record as neckcheck reads it, from what a caller brought (CDS Hooks
prefetch) or from a FHIR server (searches with paging, one deadline, the list of servers a caller may make
us contact, the caller's token). Below every front end that reads a chart: CDS Hooks, the clinician app,
and the Bulk export client.
"""
