"""Assessment → what the clinician app shows: risk, status, fired rules, dated evidence, draft orders, the
questions still to ask, and the transaction that saves it all to the chart.

The browser renders this as it is; every clinical word comes from the rule table, the codes and the
published Questionnaire (never from the page's script), so the app cannot drift from ``$assess``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from service.assess import Assessment
from service.codebook import CodeBook
from service.output.rationale import data_required
from service.output.references import fhir_datetime
from service.rules.facts import FactValue
from service.rules.table import RuleTable

JSON = dict[str, Any]
SAVED_TYPES = ("RiskAssessment", "ServiceRequest")  # with the answers: what the app's scopes may create


def resource_times(resources: list[JSON], urls: dict[int, str]) -> dict[str, str]:
    """Each input resource's reference → its clinical time (effective[x], else issued or authored): the date
    shown beside its evidence. ``urls`` gives the fullUrl of resources that have no id."""
    times: dict[str, str] = {}
    for i, r in enumerate(resources):
        period = r.get("effectivePeriod")
        when = (
            r.get("effectiveDateTime")
            or (period.get("start") if isinstance(period, dict) else None)
            or r.get("effectiveInstant")
            or r.get("issued")
            or r.get("authored")
        )
        ref = f"{r.get('resourceType')}/{r['id']}" if r.get("id") else urls.get(i)
        if ref and isinstance(when, str):
            times[ref] = when
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
    items = {i["linkId"]: i for g in questionnaire["item"] for i in g.get("item", [])}
    out = []
    for fact in ask:
        item = items.get(fact)
        if item is None:
            continue  # not askable in the form (none today); data_required still names it
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
        item["linkId"]
        for group in questionnaire["item"]
        for item in group.get("item", [])
        if "enableWhen" not in item
        and item["linkId"] in table.facts
        and not table.facts[item["linkId"]].informational
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
        "save": save_bundle(assessment, answers),
    }
