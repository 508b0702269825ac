"""The output Bundle: ``collection`` by default, or a ``transaction`` of conditional creates.

In a transaction every entry is ``POST`` with ``ifNoneExist`` on its deterministic identifier (FHIR R4
§3.1.0.8.1 conditional create), so posting the same answer twice creates nothing the second time.
Entries: the RiskAssessment, the proposed ServiceRequests, the GuidanceResponse for the evaluation, and (a
collection only) the informational OperationOutcome of input not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.codebook import CodeBook
from service.errors import InvalidInput, Problem
from service.fhir_values import fhir_datetime
from service.ids import evaluation_digest, stable_uuid
from service.intake.bundle import Intake
from service.output.guidance import guidance_identifier, guidance_response
from service.output.operation_outcome import operation_outcome
from service.output.rationale import rule_rationale
from service.output.resources import JSON, Ids, risk_assessment, service_request
from service.rules.decide import Decision
from service.rules.table import RuleTable

OUTPUTS = ("collection", "transaction")


@dataclass(frozen=True)
class Rendered:
    """The resources an evaluation creates, before any Bundle: what a CDS card or an audit record needs,
    without the GuidanceResponse and the envelope that only the FHIR answers carry."""

    ids: Ids
    resources: list[JSON]  # the RiskAssessment, then one ServiceRequest per proposed order

    @property
    def identifiers(self) -> list[str]:
        """The identifier values of everything the Bundle creates, the GuidanceResponse's included."""
        return [r["identifier"][0]["value"] for r in self.resources] + [guidance_identifier(self.ids)]


def check_output(output: str) -> str:
    """The rendering asked for (``_output``), refused before anything is built: the Bundle is built lazily."""
    if output not in OUTPUTS:
        raise InvalidInput(f"_output must be one of {', '.join(OUTPUTS)}, not {output[:40]!r}", "_output")
    return output


def render(
    input_hash: str, decision: Decision, intake: Intake, table: RuleTable, book: CodeBook, output: str
) -> Rendered:
    as_of = fhir_datetime(intake.as_of)
    digest = evaluation_digest(input_hash, table.id, table.version, as_of)
    ids = Ids(
        digest,
        stable_uuid(digest, "RiskAssessment"),
        {o.key: stable_uuid(digest, o.key) for o in decision.orders},
        {r.rule.id: rule_rationale(r, intake, table) for r in decision.fired},
    )
    resources = [risk_assessment(decision, intake, table, book, ids)]
    resources += [service_request(o, decision, intake, table, book, ids) for o in decision.orders]
    if output == "transaction" and intake.skipped:
        # a transaction holds only what is created: the notes ride on the RiskAssessment
        resources[0].setdefault("note", []).append({"text": input_notes(intake)})
    return Rendered(ids, resources)


def output_bundle(
    rendered: Rendered,
    input_hash: str,
    decision: Decision,
    intake: Intake,
    table: RuleTable,
    book: CodeBook,
    output: str = "collection",
) -> JSON:
    """The answer of ``$assess``: ``rendered``'s resources, the GuidanceResponse and (a collection only)
    the informational OperationOutcome, in one Bundle."""
    ids, resources = rendered.ids, rendered.resources
    outcome = None
    if intake.skipped:
        notes = [Problem(f"{s.reason}", s.location) for s in intake.skipped]
        outcome = operation_outcome(notes, "informational", "information")
    if output == "transaction":
        guidance = guidance_response(decision, intake, table, book, ids, input_hash, resources, outcome)
        entries = [_create(r) for r in [*resources, guidance]]
    else:
        message = None
        if outcome is not None:
            outcome = {"id": stable_uuid(ids.digest, "OperationOutcome"), **outcome}
            message = {"reference": f"urn:uuid:{outcome['id']}", "type": "OperationOutcome"}
        guidance = guidance_response(decision, intake, table, book, ids, input_hash, resources, message)
        shown = [*resources, guidance] + ([outcome] if outcome is not None else [])
        entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in shown]
    return {
        "resourceType": "Bundle",
        "id": stable_uuid(ids.digest, output),
        "type": output,
        "timestamp": fhir_datetime(intake.as_of),
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
