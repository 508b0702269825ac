"""CDS Hooks 2.0.1 service side: hooks, and reading from the EHR's FHIR server when prefetch is missing."""
