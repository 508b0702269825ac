"""The output Bundle: ``collection`` by default, or a ``transaction`` of conditional creates.

In a transaction every entry is ``POST`` with ``ifNoneExist`` on its deterministic identifier (FHIR R4
§3.1.0.8.1 conditional create), so posting the same answer twice creates nothing the second time.
Entries: the RiskAssessment, the proposed ServiceRequests, the GuidanceResponse for the evaluation, and (a
collection only) the informational OperationOutcome of input not used.
"""

from __future__ import annotations

from typing import Any

from service.codebook import CodeBook
from service.errors import InvalidInput, Problem
from service.fhir_values import fhir_datetime
from service.ids import evaluation_digest, stable_uuid
from service.intake.bundle import Intake
from service.output.guidance import guidance_response
from service.output.operation_outcome import operation_outcome
from service.output.resources import Ids, risk_assessment, service_request
from service.rules.decide import Decision
from service.rules.table import RuleTable

OUTPUTS = ("collection", "transaction")


def output_bundle(
    input_hash: str,
    decision: Decision,
    intake: Intake,
    table: RuleTable,
    book: CodeBook,
    output: str = "collection",
) -> dict[str, Any]:
    if output not in OUTPUTS:
        raise InvalidInput(f"_output must be one of {', '.join(OUTPUTS)}, not {output[:40]!r}", "_output")
    as_of = fhir_datetime(intake.as_of)
    digest = evaluation_digest(input_hash, table.id, table.version, as_of)
    ids = Ids(
        digest,
        stable_uuid(digest, "RiskAssessment"),
        {o.key: stable_uuid(digest, o.key) for o in decision.orders},
    )
    resources = [risk_assessment(decision, intake, table, book, ids)]
    resources += [service_request(o, decision, intake, table, book, ids) for o in decision.orders]
    outcome = None
    if intake.skipped:
        notes = [Problem(f"{s.reason}", s.location) for s in intake.skipped]
        outcome = operation_outcome(notes, "informational", "information")
    if output == "transaction":
        if intake.skipped:  # a transaction holds only what is created: the notes ride on the RiskAssessment
            resources[0].setdefault("note", []).append({"text": input_notes(intake)})
        guidance = guidance_response(decision, intake, table, book, ids, input_hash, resources, outcome)
        entries = [_create(r) for r in [*resources, guidance]]
    else:
        message = None
        if outcome is not None:
            outcome = {"id": stable_uuid(digest, "OperationOutcome"), **outcome}
            message = {"reference": f"urn:uuid:{outcome['id']}", "type": "OperationOutcome"}
        guidance = guidance_response(decision, intake, table, book, ids, input_hash, resources, message)
        shown = [*resources, guidance] + ([outcome] if outcome is not None else [])
        entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in shown]
    return {
        "resourceType": "Bundle",
        "id": stable_uuid(digest, output),
        "type": output,
        "timestamp": as_of,
        "entry": entries,
    }


NOTES_SHOWN = 50  # a Bundle of a thousand unrelated entries must not make a thousand-line note


def input_notes(intake: Intake) -> str:
    """The informational OperationOutcome of a collection, as one RiskAssessment.note for a transaction."""
    shown = [f"{s.location}: {s.reason}" for s in intake.skipped[:NOTES_SHOWN]]
    more = len(intake.skipped) - len(shown)
    tail = f"; and {more} more" if more > 0 else ""
    return f"Input not used, or not used as given ({len(intake.skipped)}): " + "; ".join(shown) + tail + "."


def _create(resource: dict[str, Any]) -> dict[str, Any]:
    ident = resource["identifier"][0]
    body = {k: v for k, v in resource.items() if k != "id"}
    return {
        "fullUrl": f"urn:uuid:{resource['id']}",
        "resource": body,
        "request": {
            "method": "POST",
            "url": resource["resourceType"],
            "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
        },
    }
