"""The CDS Hooks 2.0.1 payloads neckcheck reads: the hook request (§HTTP Request) and feedback (§Feedback).

Every object allows extra fields (``unknown = INCLUDE``): the spec lets clients send ``extension`` and
fields of later versions, and rejecting them would break a conforming EHR. Only what neckcheck reads is
checked, as strictly as the published JSON Schemas (generated from these classes) say.
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from service.payloads.fast_path import fast_load, fast_loader
from service.payloads.patterns import WholeText

# FHIR R4 §2.6.2 id: what context.patientId and context.encounterId must be before they go into a URL.
FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
# under schemas/: HookRequestSchema and FeedbackRequestSchema, published (service.payloads.publish)
HOOK_REQUEST_FILE = "cds-hooks/hook-request.schema.json"
FEEDBACK_FILE = "cds-hooks/feedback.schema.json"


# the services and the hook each answers (CDS Hooks 2.0.1 §Discovery): what `hook` must name
PATIENT_VIEW = "neckcheck-patient-view"
ORDER_SIGN = "neckcheck-order-sign"
HOOKS = {PATIENT_VIEW: "patient-view", ORDER_SIGN: "order-sign"}


class _Open(Schema):
    """An object that may carry fields we do not read."""

    class Meta:
        unknown = INCLUDE


class FhirAuthorizationSchema(_Open):
    """§HTTP Request fhirAuthorization: the OAuth 2.0 access token for ``fhirServer``."""

    # RFC 6750 §2.1 b64token: what an HTTP Authorization header can carry; a token with other characters
    # could never be sent to the FHIR server (it failed as a 500 when the header was encoded)
    access_token = fields.String(required=True, validate=WholeText(r"^[A-Za-z0-9\-._~+/]+=*$"))
    token_type = fields.String(required=True, validate=validate.Equal("Bearer"))
    expires_in = fields.Integer(required=True, strict=True)
    scope = fields.String(required=True)
    subject = fields.String(required=True)
    patient = fields.String()


class DraftOrdersSchema(_Open):
    resourceType = fields.String(required=True, validate=validate.Equal("Bundle"))
    entry = fields.List(fields.Raw(allow_none=True))  # any JSON value; draft_orders.py reads what it can


class ContextSchema(_Open):
    userId = fields.String(required=True, validate=validate.Length(min=1))
    patientId = fields.String(required=True, validate=WholeText(FHIR_ID))
    encounterId = fields.String(validate=WholeText(FHIR_ID))
    draftOrders = fields.Nested(
        DraftOrdersSchema, metadata={"description": "order-sign only; a Bundle of the orders being signed."}
    )


class HookRequestSchema(_Open):
    class Meta(_Open.Meta):
        json_schema_extra: ClassVar[dict[str, Any]] = {
            "description": (
                "CDS Hooks 2.0.1 §HTTP Request, as neckcheck reads it. Extra fields are allowed. "
                "`fhirAuthorization` requires `fhirServer`."
            ),
            # fhirAuthorization -> fhirServer (the rule of fhir_authorization_needs_a_server below)
            "anyOf": [{"not": {"required": ["fhirAuthorization"]}}, {"required": ["fhirServer"]}],
        }

    hook = fields.String(
        required=True,
        validate=validate.OneOf(list(dict.fromkeys(HOOKS.values()))),
        metadata={"description": "Must be the service's own hook (400 otherwise)."},
    )
    hookInstance = fields.String(required=True, validate=validate.Length(min=1, max=200))
    fhirServer = fields.String(validate=validate.Regexp(r"^https?://"))
    fhirAuthorization = fields.Nested(FhirAuthorizationSchema)
    context = fields.Nested(ContextSchema, required=True)
    prefetch = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(allow_none=True),
        metadata={
            "description": (
                "Keys `patient` (a Patient), `observations` and `questionnaireResponses` (searchset "
                "Bundles); `null` means the EHR has no such data. Other keys are ignored."
            )
        },
    )

    @validates_schema
    def fhir_authorization_needs_a_server(self, data: dict[str, Any], **_: Any) -> None:
        """§HTTP Request: fhirServer is REQUIRED when fhirAuthorization is sent."""
        if "fhirAuthorization" in data and "fhirServer" not in data:
            raise ValidationError("required when fhirAuthorization is sent", "fhirServer")


class AcceptedSuggestionSchema(_Open):
    id = fields.String(required=True)


class OverrideCodingSchema(_Open):
    code = fields.String(required=True)
    system = fields.String(required=True)


class OverrideReasonSchema(_Open):
    reason = fields.Nested(OverrideCodingSchema)
    userComment = fields.String()


class FeedbackItemSchema(_Open):
    class Meta(_Open.Meta):
        json_schema_extra: ClassVar[dict[str, Any]] = {
            "description": (
                "One card's outcome. An accepted card lists the suggestions taken and has no overrideReason."
            ),
            # the rule of accepted_has_suggestions_and_no_override below
            "anyOf": [
                {"properties": {"outcome": {"type": "string", "enum": ["overridden"]}}},
                {"required": ["acceptedSuggestions"], "not": {"required": ["overrideReason"]}},
            ],
        }

    card = fields.String(required=True, validate=validate.Length(min=1, max=100))
    outcome = fields.String(required=True, validate=validate.OneOf(["accepted", "overridden"]))
    outcomeTimestamp = fields.String(required=True, validate=validate.Length(min=4))
    acceptedSuggestions = fields.List(fields.Nested(AcceptedSuggestionSchema))
    overrideReason = fields.Nested(OverrideReasonSchema)

    @validates_schema
    def accepted_has_suggestions_and_no_override(self, data: dict[str, Any], **_: Any) -> None:
        """§Feedback: ``accepted`` carries acceptedSuggestions; overrideReason belongs to ``overridden``."""
        if data["outcome"] != "accepted":
            return
        if "acceptedSuggestions" not in data:
            raise ValidationError("required when outcome is accepted", "acceptedSuggestions")
        if "overrideReason" in data:
            raise ValidationError("not allowed when outcome is accepted", "overrideReason")


class FeedbackRequestSchema(_Open):
    class Meta(_Open.Meta):
        json_schema_extra: ClassVar[dict[str, Any]] = {
            "description": "CDS Hooks 2.0.1 §Feedback: one or more outcomes of cards this service returned."
        }

    feedback = fields.List(
        fields.Nested(FeedbackItemSchema), required=True, validate=validate.Length(min=1, max=100)
    )


def hook_request(payload: Any) -> dict[str, Any]:
    """A hook request checked by ``HookRequestSchema``; else a 400 naming every fault.

    Every CDS Hooks call starts here, so a valid request skips marshmallow (``fast_path``, issue 10).
    """
    return fast_load(HookRequestSchema, HOOK_REQUEST_FILE, payload, "malformed CDS Hooks request")


def feedback_request(payload: Any) -> dict[str, Any]:
    """A feedback request checked by ``FeedbackRequestSchema``; else a 400 naming every fault."""
    return fast_load(FeedbackRequestSchema, FEEDBACK_FILE, payload, "malformed CDS Hooks feedback")


def compile_validators() -> None:
    """Compile the hook and feedback validators now: called by the app factory, so gunicorn's preloaded
    master compiles them once (~17 ms) and its workers share them, instead of each worker's first call."""
    fast_loader(HookRequestSchema, HOOK_REQUEST_FILE)
    fast_loader(FeedbackRequestSchema, FEEDBACK_FILE)
