"""The clinician app's request to its own service (``POST /app/api/assess``).

The page names where the patient's data lives (a FHIR server base URL, or a demo sample) and the patient,
and, after the clinician answered the missing questions, the answers as plain values keyed by fact name.
The SMART access token travels in the ``Authorization`` header, never in the body. Unknown fields are
refused: this payload is ours alone, and a typo must not pass as an unanswered question.
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from service.payloads import load
from service.payloads.cds_hooks import FHIR_ID
from service.payloads.patterns import WholeText

MAX_ANSWERS = 32  # the Questionnaire has fewer items; more is not an answer sheet


def _at_most(answers: dict[str, Any], limit: int) -> None:
    if len(answers) > limit:
        raise ValidationError(f"at most {limit} answers")


class AppAssessSchema(Schema):
    class Meta:
        unknown = RAISE
        json_schema_extra: ClassVar[dict[str, Any]] = {
            "oneOf": [{"required": ["fhirServer"]}, {"required": ["sample"]}]
        }

    patient = fields.String(required=True, validate=WholeText(FHIR_ID))
    fhirServer = fields.String(
        validate=validate.Length(min=1, max=2048),
        metadata={"description": "The FHIR base URL the app was launched with (SMART iss)."},
    )
    sample = fields.String(
        validate=WholeText(r"^S[0-9]{1,2}$"),
        metadata={"description": "A demo sample (GET /app/demo) instead of a FHIR server."},
    )
    answers = fields.Dict(
        keys=fields.String(),  # which facts may be answered is the Questionnaire's to say (a 422 otherwise)
        values=fields.Raw(allow_none=True),  # null: left unanswered (unknown, never "no")
        validate=lambda answers: _at_most(answers, MAX_ANSWERS),
        metadata={
            "description": "Answers to the questions asked, keyed by fact name (linkId).",
            "maxProperties": MAX_ANSWERS,
        },
    )

    @validates_schema
    def one_source(self, data: dict[str, Any], **_: Any) -> None:
        if ("fhirServer" in data) == ("sample" in data):
            raise ValidationError("give exactly one of fhirServer and sample", "fhirServer")


def app_assess_request(payload: Any) -> dict[str, Any]:
    """The app's request checked by ``AppAssessSchema``; else a 400 naming every fault."""
    return load(AppAssessSchema, payload, "malformed clinician app request")
