"""What neckcheck reads of a patient, as FHIR searches built from the code book: the Patient, the
Observations with exactly the codes intake reads, and the responses to its own Questionnaire.

The CDS Hooks prefetch templates are these searches (service/cds/discovery.py publishes them), and the same
keys name what the FHIR-server fallback fetches; the clinician app reads with them too.
"""

from __future__ import annotations

from service.codebook import CodeBook

# prefetch keys; the same keys name what the FHIR-server fallback fetches
PATIENT, OBSERVATIONS, RESPONSES = "patient", "observations", "questionnaireResponses"


def observation_codes(book: CodeBook) -> list[str]:
    """Every system|code token intake accepts as an Observation code (facts, and LOINC Symptom)."""
    tokens = [f"{c['system']}|{c['code']}" for fact in book.raw["facts"].values() for c in fact["codings"]]
    symptom = book.raw["symptom"]
    tokens.append(f"{symptom['system']}|{symptom['code']}")
    return list(dict.fromkeys(tokens))


def prefetch_templates(book: CodeBook) -> dict[str, str]:
    questionnaire = book.canonical("Questionnaire", book.raw["questionnaire"]["id"])
    return {
        PATIENT: "Patient/{{context.patientId}}",
        OBSERVATIONS: "Observation?patient={{context.patientId}}&code=" + ",".join(observation_codes(book)),
        RESPONSES: f"QuestionnaireResponse?patient={{{{context.patientId}}}}&questionnaire={questionnaire}",
    }
