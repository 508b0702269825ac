"""The escalation-gap Measure and its MeasureReports, generated from the rule table and codes.

A proportion measure (FHIR R4 Measure, §Measure scoring ``proportion``) of how often the escalation the
rules call for is already ordered in the record:

- initial population: patients with at least one fact neckcheck reads (those ``$assess`` gives a result);
- denominator: of those, patients for whom a moderate- or high-risk rule fires and proposes an order
  (the escalation screening counts as due);
- numerator: of those, patients whose own ServiceRequests already hold every such order, recognised by
  the codes of codes.json (``draftOrderRecognition`` and each order's own codes; entered-in-error and
  revoked requests do not count);
- one stratifier per rule: the populations among the patients for whom that rule fires.

The rule-level criteria are CQL over the published Library's rule definitions (one per rule, three-valued:
``is true`` is "fires"). The Library does not read ServiceRequests or say which patients have a fact, so
the initial population and numerator are stated in words (``text/plain``): neckcheck screening computes
them, as summary.json documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.codebook import CodeBook
from service.cql.generate import LIBRARY_ID
from service.cql.generate import name as cql_name
from service.ids import content_hash, evaluation_digest, stable_uuid
from service.output.questionnaire import PUBLISHER
from service.rules.table import Rule, RuleTable, risk_rank

JSON = dict[str, Any]

MEASURE_ID = "neckcheck-escalation-gap"
MEASURE_REPORT = "MeasureReport"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
POPULATIONS = ("initial-population", "denominator", "numerator")  # measure-population codes
_POPULATION_DISPLAY = {
    "initial-population": "Initial Population",
    "denominator": "Denominator",
    "numerator": "Numerator",
}
SCORING = {"system": f"{TERMINOLOGY}/measure-scoring", "code": "proportion", "display": "Proportion"}
MEASURE_TYPE = {"system": f"{TERMINOLOGY}/measure-type", "code": "process", "display": "Process"}
IMPROVEMENT = {  # more escalations already ordered is better
    "system": f"{TERMINOLOGY}/measure-improvement-notation",
    "code": "increase",
    "display": "Increased score indicates improvement",
}
CQL_EXPRESSION = "text/cql-expression"


@dataclass(frozen=True)
class Counts:
    """The three populations of one group or stratum."""

    initial: int
    denominator: int
    numerator: int

    def by_code(self) -> dict[str, int]:
        return dict(zip(POPULATIONS, (self.initial, self.denominator, self.numerator), strict=True))


@dataclass(frozen=True)
class Tallies:
    """A run's populations, overall and among the patients each rule fires for (rule id → counts)."""

    total: Counts
    by_rule: dict[str, Counts] = field(default_factory=dict)


def escalation_rules(table: RuleTable) -> list[Rule]:
    """The rules whose orders are escalation: moderate or high risk, proposing at least one order."""
    return [r for r in table.rules if r.orders and risk_rank(r.risk) >= risk_rank("moderate")]


def measure_canonical(table: RuleTable, book: CodeBook) -> str:
    return f"{book.canonical('Measure', MEASURE_ID)}|{table.version}"


def _concept(coding: dict[str, str]) -> JSON:
    return {"coding": [coding]}


def _population_code(code: str) -> JSON:
    return _concept(
        {"system": f"{TERMINOLOGY}/measure-population", "code": code, "display": _POPULATION_DISPLAY[code]}
    )


def _fires(rule: Rule) -> str:
    return f"{cql_name(rule.id)} is true"


def measure(table: RuleTable, book: CodeBook) -> JSON:
    escalating = escalation_rules(table)
    orders = sorted({o.order for r in escalating for o in r.orders})
    due = ", ".join(f"{r.id} ({r.risk})" for r in escalating)
    populations = {
        "initial-population": (
            "Patients with at least one fact neckcheck reads: an Observation or QuestionnaireResponse "
            "answer coded as in the published Questionnaire (the patients $assess gives a result for).",
            {"language": "text/plain", "expression": "patients with a neckcheck result"},
        ),
        "denominator": (
            f"Escalation due: a moderate- or high-risk rule fires and proposes an order ({due}).",
            {"language": CQL_EXPRESSION, "expression": " or ".join(_fires(r) for r in escalating)},
        ),
        "numerator": (
            "Every escalation order due is already in the patient's own ServiceRequests (not "
            "entered-in-error or revoked), recognised by code: "
            + "; ".join(f"{key}: {', '.join(recognised_codes(book, key))}" for key in orders)
            + ".",
            {"language": "text/plain", "expression": "every escalation order due is already requested"},
        ),
    }
    return {
        "resourceType": "Measure",
        "id": MEASURE_ID,
        "url": book.canonical("Measure", MEASURE_ID),
        "version": table.version,
        "name": "NeckcheckEscalationGap",
        "title": "Escalation due and already ordered",
        "status": "active",
        "date": table.date,
        "publisher": PUBLISHER,
        "description": (
            f"Of the patients for whom rule set {table.id} {table.version} calls for escalation, the "
            "proportion whose record already holds a matching ServiceRequest. Computed by neckcheck "
            "screening over a Bulk Data export at one evaluation time (MeasureReport.period)."
        ),
        "library": [f"{book.canonical('Library', LIBRARY_ID)}|{table.version}"],
        "relatedArtifact": [
            {
                "type": "depends-on",
                "display": "The rules, with their orders and guideline",
                "resource": f"{book.canonical('PlanDefinition', book.raw['planDefinition']['id'])}"
                f"|{table.version}",
            }
        ],
        "scoring": _concept(SCORING),
        "type": [_concept(MEASURE_TYPE)],
        "improvementNotation": _concept(IMPROVEMENT),
        "rationale": "An escalation the guideline calls for and nobody has ordered is a care gap.",
        "group": [
            {
                "id": "escalation-gap",
                "population": [
                    {
                        "id": code,
                        "code": _population_code(code),
                        "description": text,
                        "criteria": criteria,
                    }
                    for code, (text, criteria) in populations.items()
                ],
                "stratifier": [
                    {
                        "id": rule.id,
                        "code": {"text": rule.id},
                        "description": f"Patients for whom rule {rule.id} fires: {rule.title}",
                        "criteria": {"language": CQL_EXPRESSION, "expression": _fires(rule)},
                    }
                    for rule in table.rules
                ],
            }
        ],
    }


# codes.json draftOrderRecognition group → the order it recognises (as service/reader/orders.py reads it;
# tests/http/test_measure.py checks the two agree); cervical-spine imaging recognises none of ours
RECOGNITION_GROUPS = {
    "brain-imaging": "mri-brain",
    "neurology-referral": "neurology-referral",
    "physiotherapy-referral": "physiotherapy-referral",
}


def recognised_codes(book: CodeBook, key: str) -> list[str]:
    """The codes that recognise order ``key`` in a ServiceRequest, as ``system|code``: its own code and
    local code, then codes.json's ``draftOrderRecognition``; a generic code names the performer it needs."""
    spec = book.raw["orders"][key]
    found = [f"{c['system']}|{c['code']}" for c in (spec.get("code"), spec.get("local")) if c]
    groups = [g for g, order in RECOGNITION_GROUPS.items() if order == key]
    for coding in (c for g in groups for c in book.raw["draftOrderRecognition"][g]):
        text = f"{coding['system']}|{coding['code']}"
        performer = (coding.get("with") or {}).get("performerType")
        if performer:
            text += f" with performerType {performer['system']}|{performer['code']}"
        if text not in found:
            found.append(text)
    return found


def _group(counts: Counts) -> JSON:
    group: JSON = {
        "population": [{"code": _population_code(code), "count": n} for code, n in counts.by_code().items()]
    }
    if counts.denominator:  # a proportion of no one is no score
        group["measureScore"] = {"value": counts.numerator / counts.denominator}
    return group


def _report(table: RuleTable, book: CodeBook, instant: str, kind: str, rid: str) -> JSON:
    return {
        "resourceType": MEASURE_REPORT,
        "id": rid,
        "status": "complete",
        "type": kind,
        "measure": measure_canonical(table, book),
        "period": {"start": instant, "end": instant},  # the records as they stood at the evaluation time
        "improvementNotation": _concept(IMPROVEMENT),
    }


def summary_report(table: RuleTable, book: CodeBook, instant: str, tallies: Tallies) -> JSON:
    """The population's report: each stratifier has a "true" stratum (the rule fires) and a "false" one
    (it does not: false, or unknown for want of data)."""
    digest = evaluation_digest(content_hash(_tallies_json(tallies)), table.id, table.version, instant)
    report = _report(table, book, instant, "summary", stable_uuid(digest, "measure-report"))
    group = _group(tallies.total)
    group["stratifier"] = []
    for rule in table.rules:
        fired = tallies.by_rule.get(rule.id, Counts(0, 0, 0))
        rest = Counts(*(t - f for t, f in zip(_fields(tallies.total), _fields(fired), strict=True)))
        strata = [{"value": {"text": value}, **_group(c)} for value, c in (("true", fired), ("false", rest))]
        group["stratifier"].append({"code": [{"text": rule.id}], "stratum": strata})
    report["group"] = [group]
    return report


def individual_report(
    table: RuleTable, book: CodeBook, instant: str, patient: str, ordered: bool, risk_assessment: str
) -> JSON:
    """One patient of the denominator: in the numerator when ``ordered``; ``risk_assessment`` (the id of
    the RiskAssessment screening wrote for the patient) is the evaluated resource."""
    digest = evaluation_digest(content_hash({"patient": patient}), table.id, table.version, instant)
    report = _report(table, book, instant, "individual", stable_uuid(digest, "measure-report"))
    report["subject"] = {"reference": patient}
    report["group"] = [_group(Counts(1, 1, int(ordered)))]
    report["evaluatedResource"] = [{"reference": f"RiskAssessment/{risk_assessment}"}]
    return report


def _fields(counts: Counts) -> tuple[int, int, int]:
    return counts.initial, counts.denominator, counts.numerator


def _tallies_json(tallies: Tallies) -> JSON:
    return {
        "total": _fields(tallies.total),
        "byRule": {rule: _fields(c) for rule, c in sorted(tallies.by_rule.items())},
    }
