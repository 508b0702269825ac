"""One CDS Hooks call, end to end: validate, gather data, assess with the same engine as $assess, card.

Kept free of Flask so the whole path can be driven from a test or a benchmark without HTTP.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from service.assess import Assessment, Assessor
from service.cds.cards import CardContext, card_for
from service.errors import InvalidInput, NeckcheckError, NoFacts, NotFound, Unprocessable
from service.payloads.cds_hooks import HOOKS, ORDER_SIGN, hook_request
from service.reader.client import FhirClient
from service.reader.orders import drafted_orders
from service.reader.record import gather
from service.reader.searches import prefetch_templates
from service.security.fhir_servers import FhirServerPolicy


def known_service(service_id: str) -> None:
    """404 for a service id discovery does not list."""
    if service_id not in HOOKS:
        raise NotFound(f"no CDS service {service_id[:64]!r}; see GET /cds-services")


@dataclass(frozen=True)
class HookResult:
    response: dict[str, Any]
    assessment: Assessment | None
    fetched: tuple[str, ...]
    failures: tuple[str, ...]
    bundle: dict[str, Any]  # what was read, as a collection Bundle (for the audit record)
    refused: NeckcheckError | None = None  # the chart was read but could not be assessed: answer this


def run_hook(
    service_id: str,
    payload: Any,
    assessor: Assessor,
    client: FhirClient,
    plan_definition_url: str,
    fhir_servers: FhirServerPolicy,
    now: dt.datetime | None = None,
    templates: dict[str, str] | None = None,
) -> HookResult:
    """``templates``: the prefetch templates, computed once per process by the caller (or here)."""
    known_service(service_id)
    request = hook_request(payload)
    if request["hook"] != HOOKS[service_id]:
        raise InvalidInput(
            f"service {service_id} answers hook {HOOKS[service_id]!r}, not {request['hook'][:40]!r}"
        )
    gathered = gather(request, templates or prefetch_templates(assessor.book), client, fhir_servers)
    patient_id = request["context"]["patientId"]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in gathered.resources],
    }
    nothing = HookResult({"cards": []}, None, gathered.fetched, gathered.failures, bundle)
    facts = [
        r for r in gathered.resources if r.get("resourceType") in ("Observation", "QuestionnaireResponse")
    ]
    if not facts:
        return nothing
    when = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    try:
        # the clock, not an explicit asOf: later-dated evidence is clock skew and is used (rules.md §1)
        assessment = assessor.run(bundle, now=when)
    except NoFacts:
        return nothing
    except NeckcheckError as error:  # read, but not assessable: the caller audits the read, then answers
        return HookResult({"cards": []}, None, gathered.fetched, gathered.failures, bundle, error)
    if assessment.subject != f"Patient/{patient_id}":
        refused = Unprocessable(
            "the data is about another patient than context.patientId", "context.patientId"
        )
        return HookResult({"cards": []}, None, gathered.fetched, gathered.failures, bundle, refused)
    ctx = CardContext(plan_definition_url)
    if service_id == ORDER_SIGN:
        drafted = drafted_orders(request["context"].get("draftOrders"), assessor.book)
        proposes_brain = any(o.key == "mri-brain" for o in assessment.orders)
        spine_only = drafted.cervical_spine_imaging and proposes_brain and "mri-brain" not in drafted.orders
        ctx = CardContext(plan_definition_url, drafted.orders, spine_only)
    card = card_for(assessment, assessor.table, assessor.book, ctx)
    return HookResult(
        {"cards": [card] if card else []}, assessment, gathered.fetched, gathered.failures, bundle
    )
