"""Assessment → what the clinician app shows: risk, status, fired rules, dated evidence, draft orders, the
questions still to ask, and the transaction that saves it all to the chart.

The browser renders this as it is; every clinical word comes from the rule table, the codes and the
published Questionnaire (never from the page's script), so the app cannot drift from ``$assess``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from service.app_ui.answers import items_by_link_id
from service.assess import Assessment
from service.codebook import CodeBook
from service.errors import InvalidInput
from service.fhir_values import fhir_datetime
from service.intake.fields import opt_datetime
from service.intake.observation import observation_time
from service.output.rationale import data_required
from service.rules.facts import FactValue
from service.rules.table import RuleTable

JSON = dict[str, Any]
SAVED_TYPES = ("RiskAssessment", "ServiceRequest")  # with the answers: what the app's scopes may create


def resource_times(entries: list[JSON]) -> dict[str, str]:
    """Each input resource's reference → its clinical time, the date shown beside its evidence: the time the
    intake itself gives it (an Observation's effective[x], else issued; a QuestionnaireResponse's authored).
    A resource with neither id nor fullUrl, or one the intake skipped for a malformed date, gets none: it is
    not cited as evidence."""
    times: dict[str, str] = {}
    for i, entry in enumerate(entries):
        r, loc = entry["resource"], f"Bundle.entry[{i}].resource"
        ref = f"{r.get('resourceType')}/{r['id']}" if r.get("id") else entry.get("fullUrl")
        try:
            when = observation_time(r, loc) if r.get("resourceType") == "Observation" else None
            when = when or opt_datetime(r, "authored", loc)
        except InvalidInput:
            continue
        if ref and when is not None:
            times[ref] = when.isoformat().replace("+00:00", "Z")  # as recorded: its own offset kept
    return times


def _shown(value: FactValue, kind: str, book: CodeBook) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "side":
        return str(book.side_coding(str(value)).get("display") or value)
    if kind == "days":
        return f"{value} days"
    if kind == "score":
        return f"{value}/10"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _evidence(assessment: Assessment, table: RuleTable, book: CodeBook, times: dict[str, str]) -> list[JSON]:
    shown = []
    for name, fact in assessment.intake.facts.items():
        if fact.value is None or name not in table.facts:
            continue
        sources = [e.reference for e in fact.evidence]
        dates = sorted({times[s] for s in sources if s in times})
        shown.append(
            {
                "fact": name,
                "label": table.facts[name].label,
                "value": _shown(fact.value, table.facts[name].kind, book),
                "date": dates[-1] if dates else None,
                "source": sources,
                "conflict": fact.conflict,
            }
        )
    return shown


def _questions(ask: tuple[str, ...], questionnaire: JSON) -> list[JSON]:
    items = items_by_link_id(questionnaire)
    out = []
    for fact in ask:
        if fact not in items:
            continue  # not askable in the form (none today); data_required still names it
        item = items[fact][1]
        question: JSON = {"fact": fact, "text": item["text"], "type": item["type"]}
        if item["type"] == "choice":
            question["options"] = [
                {"code": o["valueCoding"]["code"], "display": o["valueCoding"].get("display", "")}
                for o in item.get("answerOption", [])
            ]
        out.append(question)
    return out


def first_questions(questionnaire: JSON, table: RuleTable) -> list[JSON]:
    """With nothing recorded, the questions that open the form: every item no other answer gates
    (``enableWhen``) whose fact the rules use. The answers then decide what else to ask, round by round."""
    opening = tuple(
        link_id
        for link_id, (_, item) in items_by_link_id(questionnaire).items()
        if "enableWhen" not in item and link_id in table.facts and not table.facts[link_id].informational
    )
    return _questions(opening, questionnaire)


def nothing_recorded(patient: str, as_of: str, questionnaire: JSON, table: RuleTable) -> JSON:
    """The screen when the chart holds nothing the rules read: no risk can be given (unknown is not "no"),
    so the app asks the opening questions instead of failing with the 422 ``$assess`` would give."""
    return {
        "patient": f"Patient/{patient}",
        "asOf": as_of,
        "risk": "unknown",
        "status": "no data",
        "summary": "Nothing on record about facial numbness, neck pain or the urgent signs.",
        "why": "No result without data: ask the questions below, then reassess.",
        "rules": [],
        "evidence": [],
        "orders": [],
        "ask": first_questions(questionnaire, table),
        "notUsed": [],
        "save": {"resourceType": "Bundle", "type": "transaction", "entry": []},
    }


def save_bundle(assessment: Assessment, answers: tuple[str, JSON] | None) -> JSON:
    """One FHIR transaction: the answers, the RiskAssessment and its draft ServiceRequests, each a conditional
    create on its identifier (R4 §3.1.0.8.1 ``ifNoneExist``), so saving twice creates nothing new."""
    entries = []
    if answers is not None:
        url, response = answers
        ident = response["identifier"]
        entries.append(
            {
                "fullUrl": url,
                "resource": response,
                "request": {
                    "method": "POST",
                    "url": "QuestionnaireResponse",
                    "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
                },
            }
        )
    entries += [e for e in assessment.bundle["entry"] if e["resource"]["resourceType"] in SAVED_TYPES]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def screen(
    assessment: Assessment,
    table: RuleTable,
    book: CodeBook,
    questionnaire: JSON,
    times: dict[str, str],
    answers: tuple[str, JSON] | None,
) -> JSON:
    decision = assessment.decision
    risk_assessment = assessment.bundle["entry"][0]["resource"]
    orders = [
        e["resource"] for e in assessment.bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    ]
    why = data_required(decision, assessment.intake, table)
    rationale = str(risk_assessment["prediction"][0].get("rationale", ""))
    return {
        "patient": assessment.intake.subject.get("reference"),
        "asOf": fhir_datetime(assessment.intake.as_of),
        "risk": decision.risk,
        "status": "final" if decision.final else "preliminary",
        "summary": rationale.replace(why, "").strip() if why else rationale,  # "why" is shown on its own
        "why": why,
        "rules": [
            {
                "id": r.rule.id,
                "title": r.rule.title,
                "outcome": r.rule.outcome,
                "risk": r.rule.risk,
                "guideline": r.rule.guideline,
            }
            for r in decision.fired
        ],
        "evidence": _evidence(assessment, table, book, times),
        "orders": [
            {
                "title": sr["code"].get("text") or sr["code"]["coding"][0].get("display", ""),
                "priority": sr.get("priority"),
                "status": sr["status"],
                "intent": sr["intent"],
            }
            for sr in orders
        ],
        "ask": _questions(decision.ask_about, questionnaire),
        "notUsed": [{"where": s.location, "why": s.reason} for s in assessment.intake.skipped],
        "save": save_bundle(assessment, answers),
    }
