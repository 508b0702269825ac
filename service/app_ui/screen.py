"""Assessment → what the clinician app shows: the action (or, while preliminary, what is missing), risk,
status, who the patient is, fired rules, dated evidence (the clinician's own answers apart), what was read
but not used, draft orders, the questions still to ask, and the transaction that saves it all to the chart.

The browser renders this as it is; every clinical word comes from the rule table, the codes and the
published Questionnaire (never from the page's script), so the app cannot drift from ``$assess`` or the
CDS card: the action is the fired rule's ``outcome``, the words the card's summary is built from.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from service.app_ui.answers import items_by_link_id
from service.assess import Assessment, FactValue
from service.codebook import CodeBook
from service.errors import NoFacts
from service.fhir_values import fhir_datetime
from service.rules.table import Condition, Leaf, RuleTable

JSON = dict[str, Any]
SAVED_TYPES = ("RiskAssessment", "ServiceRequest")  # with the answers: what the app's scopes may create
NO_DATA = "No result without data: ask the questions below, then reassess."  # what to do, and why no result


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


def _evidence(assessment: Assessment, book: CodeBook, answers: tuple[str, JSON] | None) -> list[JSON]:
    """What the chart and the answers say, each fact with the latest time among its sources (the time the
    intake gives it: an Observation's effective[x], else issued; a QuestionnaireResponse's authored).
    ``answeredHere``: the clinician's answers in this session are among its sources, so the page does not
    show them as though they were already on record."""
    here = answers[0] if answers is not None else None
    shown = []
    for finding in assessment.findings:
        if finding.value is None:
            continue
        time = finding.time
        shown.append(
            {
                "fact": finding.fact,
                "label": finding.label,
                "value": _shown(finding.value, finding.kind, book),
                "date": fhir_datetime(time) if time is not None else None,
                "source": [s.reference for s in finding.sources],
                "conflict": finding.conflict,
                "answeredHere": any(s.reference == here for s in finding.sources),
            }
        )
    return shown


def _questions(ask: tuple[str, ...], questionnaire: JSON, needed: bool = True) -> list[JSON]:
    """``needed``: the answer could change the result (rules.md §3); else it is only recorded."""
    items = items_by_link_id(questionnaire)
    out = []
    for fact in ask:
        if fact not in items:
            continue  # not askable in the form (none today); data_required still names it
        item = items[fact][1]
        question: JSON = {"fact": fact, "text": item["text"], "type": item["type"], "needed": needed}
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


def _facts_of(condition: Condition) -> tuple[str, ...]:
    if isinstance(condition, Leaf):
        return (condition.fact,)
    return tuple(f for term in condition.terms for f in _facts_of(term))


def urgent_signs(table: RuleTable) -> tuple[str, ...]:
    """The facts of the high-risk rules (the urgent signs): any one present is the result on its own."""
    found = (f for rule in table.rules if rule.risk == "high" for f in _facts_of(rule.when))
    return tuple(dict.fromkeys(found))


def _still_answerable(assessment: Assessment) -> tuple[str, ...]:
    """The urgent signs nothing read gives a value, besides those to ask: once one sign is present the
    others cannot change the result, yet the clinician must still be able to record what the patient says."""
    known = {f.fact for f in assessment.findings if f.value is not None}
    asked = {q.fact for q in assessment.to_ask}
    return tuple(f for f in urgent_signs(assessment.table) if f not in known and f not in asked)


def not_used(nothing: NoFacts) -> list[JSON]:
    """What a chart that gave no fact held, and why each was not used (entered in error, unreadable, ...):
    the intake's reasons as ``NoFacts`` carries them, each located, without the location repeated."""
    return [
        {"where": p.location, "why": p.message.removeprefix(f"{p.location}: ")}
        for p in nothing.problems
        if p.location is not None
    ]


def nothing_recorded(
    patient: str,
    as_of: dt.datetime,
    person: JSON,
    questionnaire: JSON,
    table: RuleTable,
    unused: list[JSON],
) -> JSON:
    """The screen when the chart holds nothing the rules read: no risk can be given (unknown is not "no"),
    so the app asks the opening questions instead of failing with the 422 ``$assess`` would give."""
    return {
        "patient": f"Patient/{patient}",
        "demographics": person,
        "asOf": fhir_datetime(as_of),
        "risk": "unknown",
        "status": "no data",
        "action": NO_DATA,
        "summary": "Nothing on record about facial numbness, neck pain or the urgent signs.",
        "why": NO_DATA,
        "rules": [],
        "evidence": [],
        "orders": [],
        "ask": first_questions(questionnaire, table),
        "notUsed": unused,
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


def action(assessment: Assessment) -> str:
    """What to do, in the rule table's words: the most serious fired rule's outcome (what the CDS card's
    summary leads with), else the table's outcome and guideline for when no rule fired."""
    if assessment.rules_fired:
        return assessment.rules_fired[0].outcome  # most serious first, as the table orders them
    table = assessment.table
    return f"{table.no_rule_outcome}. {table.no_rule_guideline}"


def screen(
    assessment: Assessment,
    book: CodeBook,
    questionnaire: JSON,
    answers: tuple[str, JSON] | None,
    person: JSON,
) -> JSON:
    why = assessment.why_preliminary
    rationale = str(assessment.risk_assessment["prediction"][0].get("rationale", ""))
    return {
        "patient": assessment.subject,
        "demographics": person,
        "asOf": fhir_datetime(assessment.as_of),
        "risk": assessment.risk,
        "status": assessment.status,
        "action": action(assessment),
        "summary": rationale.replace(why, "").strip() if why else rationale,  # "why" is shown on its own
        "why": why,
        "rules": [
            {"id": r.id, "title": r.title, "outcome": r.outcome, "risk": r.risk, "guideline": r.guideline}
            for r in assessment.rules_fired
        ],
        "evidence": _evidence(assessment, book, answers),
        "orders": [
            {
                "title": sr["code"].get("text") or sr["code"]["coding"][0].get("display", ""),
                "priority": sr.get("priority"),
                "status": sr["status"],
                "intent": sr["intent"],
            }
            for sr in (o.resource for o in assessment.orders)
        ],
        "ask": [
            *_questions(tuple(q.fact for q in assessment.to_ask), questionnaire),
            *_questions(_still_answerable(assessment), questionnaire, needed=False),
        ],
        "notUsed": [{"where": n.where, "why": n.why} for n in assessment.not_used],
        "save": save_bundle(assessment, answers),
    }
