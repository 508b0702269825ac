"""The clinician's answers in the app → one QuestionnaireResponse on the published Questionnaire.

The app asks only what the assessment lacks (``Decision.ask_about``); the answers come back as plain
values keyed by fact name and are turned here, not in the browser, into the FHIR form the intake already
reads (R4 QuestionnaireResponse, items nested in their groups as in the Questionnaire). The same resource is
reassessed and, if the clinician saves, written to the chart, so what was decided and what is stored agree.

An answer the item cannot hold (a word for a yes/no question, a side that is not an answer option, a number
out of range) is a 422 naming ``answers.<fact>``: nothing is guessed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from service.codebook import CodeBook
from service.errors import Unprocessable
from service.fhir_values import INT32, fhir_datetime
from service.ids import content_hash, stable_uuid
from service.output.questionnaire import questionnaire_canonical
from service.rules.table import RuleTable

JSON = dict[str, Any]


def items_by_link_id(questionnaire: JSON) -> dict[str, tuple[JSON, JSON]]:
    """Each answerable item with the group that holds it."""
    return {
        item["linkId"]: (group, item) for group in questionnaire["item"] for item in group.get("item", [])
    }


def _answer(item: JSON, value: Any, fact: str, table: RuleTable, authored: dt.datetime) -> JSON:
    where = f"answers.{fact}"
    kind = item["type"]
    if kind == "boolean":
        if not isinstance(value, bool):
            raise Unprocessable(f"{fact}: answer true or false", where)
        return {"valueBoolean": value}
    if kind == "choice":
        options = [o["valueCoding"] for o in item.get("answerOption", [])]
        chosen = [c for c in options if c.get("code") == value]
        if not chosen:
            codes = ", ".join(str(c.get("code")) for c in options)
            raise Unprocessable(f"{fact}: answer one of the codes {codes}", where)
        return {"valueCoding": chosen[0]}
    if kind == "integer":
        low, high = table.facts[fact].minimum, table.facts[fact].maximum
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise Unprocessable(f"{fact}: answer a whole number of at least 0", where)
        if (low is not None and value < low) or (high is not None and value > high):
            raise Unprocessable(f"{fact}: answer a number from {low} to {high}", where)
        if value > INT32[1]:  # FHIR R4 integer: a signed 32-bit value
            raise Unprocessable(f"{fact}: answer a number up to {INT32[1]}", where)
        return {"valueInteger": value}
    if kind == "date":
        try:
            day = dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            raise Unprocessable(f"{fact}: answer a date as YYYY-MM-DD", where) from None
        if day > authored.date():
            raise Unprocessable(
                f"{fact}: a date after {authored.date().isoformat()} has not happened yet", where
            )
        return {"valueDate": day.isoformat()}
    raise Unprocessable(f"{fact}: this question cannot be answered in the app", where)


def answers_response(
    answers: dict[str, Any],
    patient_id: str,
    authored: dt.datetime,
    questionnaire: JSON,
    table: RuleTable,
    book: CodeBook,
) -> tuple[str, JSON]:
    """The fullUrl and QuestionnaireResponse for ``answers`` (fact → value), about ``Patient/<patient_id>``.

    It has no id but a ``urn:uuid`` fullUrl, so the RiskAssessment cites it by that URL and a FHIR server
    rewrites both on the transaction that saves them (R4 §3.1.0.11.2). Its identifier is a hash of what was
    answered, for whom and when: saving the same answers twice matches the first copy (conditional create).
    """
    known = items_by_link_id(questionnaire)
    given = {fact: value for fact, value in answers.items() if value is not None}  # None: stays unknown
    for fact in given:
        if fact not in known:
            raise Unprocessable(f"{fact[:64]!r} is not a question of the published Questionnaire", "answers")
    groups: dict[str, JSON] = {}  # filled in the Questionnaire's order (dicts keep it), groups and items
    for link_id, (group, item) in known.items():
        if link_id in given:
            answer = _answer(item, given[link_id], link_id, table, authored)
            shown = groups.setdefault(
                group["linkId"], {"linkId": group["linkId"], "text": group["text"], "item": []}
            )
            shown["item"].append({"linkId": link_id, "text": item["text"], "answer": [answer]})
    when = fhir_datetime(authored)
    digest = content_hash({"patient": patient_id, "authored": when, "answers": given})
    response: JSON = {
        "resourceType": "QuestionnaireResponse",
        "identifier": book.identifier("questionnaire-response", f"{digest[:32]}-answers"),
        "questionnaire": questionnaire_canonical(book, table),
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": when,
        "item": list(groups.values()),
    }
    return f"urn:uuid:{stable_uuid(digest, 'answers')}", response
