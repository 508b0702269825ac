"""Decision → RiskAssessment and ServiceRequests (rules.md §5). Pure functions of the decision and intake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.codebook import CodeBook
from service.fhir_values import fhir_datetime
from service.intake.bundle import Intake
from service.output.rationale import context_note, data_required, no_rule_rationale
from service.output.references import references
from service.rules.decide import Decision, ProposedOrder
from service.rules.table import RuleTable

JSON = dict[str, Any]


@dataclass(frozen=True)
class Ids:
    """The deterministic ids of one evaluation (see identifiers.py), and each fired rule's rationale: the
    RiskAssessment and every ServiceRequest the rule proposed cite the same sentence, made once."""

    digest: str
    risk_assessment: str
    orders: dict[str, str]
    rationales: dict[str, str]  # rule id -> rule_rationale, for every fired rule

    @property
    def value(self) -> str:
        return self.digest[:32]


def plan_definition_canonical(book: CodeBook, table: RuleTable) -> str:
    return f"{book.canonical('PlanDefinition', book.raw['planDefinition']['id'])}|{table.version}"


def _common(intake: Intake) -> JSON:
    out: JSON = {"subject": intake.subject}
    if intake.encounter:
        out["encounter"] = intake.encounter
    return out


def risk_assessment(decision: Decision, intake: Intake, table: RuleTable, book: CodeBook, ids: Ids) -> JSON:
    risk_system = book.raw["risk"]["system"]
    predictions = [
        {
            "outcome": {"text": r.rule.outcome},
            "qualitativeRisk": {"coding": [{"system": risk_system, "code": r.rule.risk}]},
            "rationale": ids.rationales[r.rule.id],
        }
        for r in decision.fired
    ]
    if not predictions:
        predictions = [
            {
                "outcome": {"text": table.no_rule_outcome},
                "qualitativeRisk": {"coding": [{"system": risk_system, "code": decision.risk}]},
                "rationale": no_rule_rationale(decision, intake, table),
            }
        ]
    notes = [data_required(decision, intake, table), *intake.conflicts, context_note(intake, table)]
    resource: JSON = {
        "resourceType": "RiskAssessment",
        "id": ids.risk_assessment,
        "identifier": [book.identifier("risk-assessment", ids.value)],
        "status": "final" if decision.final else "preliminary",
        **_common(intake),
        "occurrenceDateTime": fhir_datetime(intake.as_of),
        "method": {"text": f"{table.id} {table.version}: {table.title}"},
        "basis": references(intake.basis),
        "prediction": predictions,
    }
    if not resource["basis"]:
        del resource["basis"]
    if any(notes):
        resource["note"] = [{"text": n} for n in notes if n]
    return resource


def service_request(
    order: ProposedOrder, decision: Decision, intake: Intake, table: RuleTable, book: CodeBook, ids: Ids
) -> JSON:
    spec = book.raw["orders"][order.key]
    codings = book.order_codings(order.key)
    notes = [ids.rationales[rule_id] for rule_id in order.rules]
    if table.orders[order.key].note:
        notes.insert(0, table.orders[order.key].note or "")
    resource: JSON = {
        "resourceType": "ServiceRequest",
        "id": ids.orders[order.key],
        "identifier": [book.identifier("service-request", f"{ids.value}-{order.key}")],
        "instantiatesCanonical": [plan_definition_canonical(book, table)],
        "status": "draft",
        "intent": "proposal",
        "category": [{"coding": [book.coding("categories", spec["category"])]}],
        "priority": order.priority,
        "code": {"coding": codings, "text": table.orders[order.key].title},
        **_common(intake),
        "authoredOn": fhir_datetime(intake.as_of),
    }
    if spec.get("performerType"):
        resource["performerType"] = {"coding": [book.coding("orders", order.key, "performerType")]}
    reasons = references(order.evidence, "Observation")
    if reasons:
        resource["reasonReference"] = reasons
    # the RiskAssessment by its identifier, not its urn:uuid: the reference then holds wherever the
    # ServiceRequest ends up (a transaction, or a CDS Hooks card's create action posted on its own)
    risk = {"type": "RiskAssessment", "identifier": book.identifier("risk-assessment", ids.value)}
    resource["supportingInfo"] = [*references(intake.responses), risk]
    resource["note"] = [{"text": n} for n in notes]
    return resource
