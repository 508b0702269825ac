"""The computable guideline: the rule table as a CQL library (and its ELM), published as a FHIR Library.

``generate`` writes the CQL from the rule table and codes.json; ``build`` (``make cql``) translates it to
ELM with the reference translator; ``library`` renders both as the FHIR ``logic-library`` and answers
``$data-requirements``. The ELM is run by the reference CQL engine in the tests, against the Python engine.
"""
