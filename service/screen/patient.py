"""One patient's resources → the screening outcome, with exactly the engine ``$assess`` runs.

The patient's Observations, QuestionnaireResponses, Patient and Encounter resources, in export order
(file, then line), make one ``collection`` Bundle that goes through ``Assessor.run`` unchanged: what
``POST /fhir/$assess`` would answer for that Bundle is what screening records. Both engines (local and
Spark) call ``screen_patient``, so their results cannot differ.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from service.assess import Assessment, Assessor
from service.errors import NeckcheckError, NoFacts
from service.reader.orders import drafted_orders
from service.rules.table import risk_rank

FACT_TYPES = frozenset({"Observation", "QuestionnaireResponse"})
# a ServiceRequest in these states is no referral: it was a mistake, or it was withdrawn (R4 request-status)
NOT_A_REFERRAL = frozenset({"entered-in-error", "revoked"})


@dataclass(frozen=True)
class EvaluationTime:
    """``as_of`` when given (later-dated evidence is then not used, rules.md §1); else ``now``, one fixed
    instant for the whole run, passed as the clock so the result is what ``$assess`` says with the
    server clock at that instant."""

    as_of: dt.datetime | None = None
    now: dt.datetime | None = None


@dataclass
class Outcome:
    """What screening keeps of one patient. ``line`` is the results.ndjson line (None when the patient
    has no fact, or could not be assessed: then ``error`` says why)."""

    patient: str
    line: str | None = None
    risk: str | None = None
    final: bool = True
    rules: tuple[str, ...] = ()
    ask: tuple[str, ...] = ()
    resources: list[dict[str, Any]] = field(default_factory=list)  # RiskAssessment, ServiceRequests
    escalation: tuple[str, ...] = ()  # proposed orders of moderate/high-risk rules
    unmatched: tuple[str, ...] = ()  # of those, the ones no ServiceRequest in the data matches
    stale: tuple[str, ...] = ()  # the fact of each reading older than its lookback (rules.md §1): not used
    no_facts: bool = False
    error: dict[str, Any] | None = None


def screen_patient(
    assessor: Assessor,
    patient: str,
    resources: list[dict[str, Any]],
    requests: list[dict[str, Any]],
    when: EvaluationTime,
) -> Outcome:
    """Assess one patient; an input the engine refuses is recorded for that patient, never raised."""
    if not any(r.get("resourceType") in FACT_TYPES for r in resources):
        return Outcome(patient, no_facts=True)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    try:
        result = assessor.run(bundle, as_of=when.as_of, now=when.now)
    except NoFacts:
        return Outcome(patient, no_facts=True)
    except NeckcheckError as error:
        problems = [p.message for p in error.problems[:20]]
        return Outcome(patient, error={"patient": patient, "status": error.status, "problems": problems})
    out = [result.risk_assessment, *result.service_requests]
    escalation = escalation_orders(result, assessor)
    drafted = drafted_orders(
        {"entry": [{"resource": r} for r in requests if r.get("status") not in NOT_A_REFERRAL]},
        assessor.book,
    ).orders
    return Outcome(
        patient,
        line=results_line(patient, result),
        risk=result.risk,
        final=result.final,
        rules=tuple(r.id for r in result.rules_fired),
        ask=tuple(q.fact for q in result.to_ask),
        resources=out,
        escalation=escalation,
        unmatched=tuple(k for k in escalation if k not in drafted),
        stale=result.stale_facts,
    )


def results_line(patient: str, result: Assessment) -> str:
    """The issue's line, field for field: patient, status, risk, fired rules, orders (key → priority),
    the facts to ask about, and the rule set."""
    return json.dumps(
        {
            "patient": patient,
            **result.outcome,
            "ask": [q.fact for q in result.to_ask],
            "ruleSet": result.rule_set,
        },
        ensure_ascii=False,
    )


def escalation_orders(result: Assessment, assessor: Assessor) -> tuple[str, ...]:
    """Orders proposed by a moderate- or high-risk rule: the escalation a referral should show."""
    risk = {rule.id: rule.risk for rule in assessor.table.rules}
    serious = risk_rank("moderate")
    return tuple(o.key for o in result.orders if any(risk_rank(risk[r]) >= serious for r in o.rules))
