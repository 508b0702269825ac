"""The CDS Hooks discovery document (CDS Hooks 2.0.1 §Discovery), built from the codes and rule table.

The Observation prefetch asks for exactly the codes intake reads, so the EHR sends nothing the engine
would ignore and misses nothing it would use.
"""

from __future__ import annotations

from typing import Any

from service.codebook import CodeBook
from service.payloads.cds_hooks import ORDER_SIGN, PATIENT_VIEW
from service.reader.searches import prefetch_templates
from service.rules.table import RuleTable


def smart_app(base: str, client_id: str, scope: str) -> dict[str, Any]:
    """How an EHR registers the clinician app the cards link to (SMART App Launch 2.x, EHR launch): carried
    in each service's ``extension`` (CDS Hooks 2.0.1 §Extensions), so the integrator reads it where they
    register the service."""
    return {
        "launchUrl": f"{base}/app/launch",
        "redirectUri": f"{base}/app/",
        "clientId": client_id,
        "clientType": "public (PKCE S256, no secret)",
        "scope": scope,
    }


def discovery(table: RuleTable, book: CodeBook, app: dict[str, Any] | None = None) -> dict[str, Any]:
    """``app``: the clinician app's registration (``smart_app``), added to each service when given."""
    prefetch = prefetch_templates(book)
    usage = (
        "Send the prefetch, or a fhirServer with fhirAuthorization allowing Patient, Observation and "
        "QuestionnaireResponse read; without either the service answers 412. Requests need a JWT signed by "
        "a trusted issuer (CDS Hooks security)."
    )
    document: dict[str, Any] = {
        "services": [
            {
                "hook": "patient-view",
                "id": PATIENT_VIEW,
                "title": "Facial numbness with neck pain: when to escalate",
                "description": (
                    f"Runs rule set {table.id} {table.version} on the patient's symptom Observations and "
                    "neckcheck questionnaire answers; shows a card when a rule fires or data is missing."
                ),
                "usageRequirements": usage,
                "prefetch": prefetch,
            },
            {
                "hook": "order-sign",
                "id": ORDER_SIGN,
                "title": "Facial numbness with neck pain: check the orders being signed",
                "description": (
                    "Proposes the orders the escalation rules call for that are not among the draft orders, "
                    "and says when cervical spine imaging is drafted where the rules call for brain imaging."
                ),
                "usageRequirements": usage,
                "prefetch": prefetch,
            },
        ]
    }
    if app is not None:
        for service in document["services"]:
            service["extension"] = {"neckcheck-smart-app": app}
    return document
