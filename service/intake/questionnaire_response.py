"""QuestionnaireResponse (of neckcheck's own Questionnaire) → readings (rules.md §4).

linkIds are the fact names; items may nest in groups or under answers. An item with no answer gives no
reading (the fact stays unknown); ``asked-unknown`` gives an explicit unknown. Our Questionnaire fixes
the answer types, so an answer of another type is the caller's error (400).
"""

from __future__ import annotations

from collections.abc import Callable

from service.codebook import CodeBook
from service.errors import InvalidInput, Unprocessable
from service.intake.fields import (
    JSON,
    coding_pair,
    obj,
    opt_bool,
    opt_datetime,
    opt_datetime_span,
    opt_int,
    opt_list,
    opt_number,
    opt_obj,
    opt_str,
)
from service.intake.readings import Reading, Skipped
from service.rules.facts import Evidence, FactValue
from service.rules.table import RuleTable

IGNORED = ("entered-in-error", "stopped")
USED = ("completed", "amended", "in-progress")


def is_ours(resource: JSON, loc: str, book: CodeBook, questionnaire_id: str) -> bool:
    """Whether ``questionnaire`` is our canonical, with or without ``|version``."""
    canonical = opt_str(resource, "questionnaire", loc)
    return canonical is not None and canonical.split("|", 1)[0] == book.canonical(
        "Questionnaire", questionnaire_id
    )


def _visit_items(holder: JSON, loc: str, visit: Callable[[JSON, str], None]) -> None:
    """Each item, depth first in document order (items nest in groups and under answers), handed to
    ``visit`` as soon as it is reached, so a malformed later item is found after the earlier ones are read."""
    for i, raw in enumerate(opt_list(holder, "item", loc)):
        where = f"{loc}.item[{i}]"
        item = obj(raw, where)
        visit(item, where)
        _visit_items(item, where, visit)
        for j, answer in enumerate(opt_list(item, "answer", where)):
            at = f"{where}.answer[{j}]"
            _visit_items(obj(answer, at), at, visit)


def questionnaire_readings(
    resource: JSON, loc: str, evidence: Evidence, book: CodeBook, table: RuleTable
) -> tuple[list[Reading], list[Skipped], bool]:
    """Readings, skipped notes, and whether the response is still in progress."""
    status = opt_str(resource, "status", loc)
    if status is None:
        raise InvalidInput(f"{loc}.status is required", f"{loc}.status")
    if status not in USED:
        return [], [Skipped(loc, f"QuestionnaireResponse not used (status {status})")], False
    authored = opt_datetime_span(resource, "authored", loc)
    when, seen = authored if authored is not None else (None, None)
    readings: list[Reading] = []

    def read(item: JSON, where: str) -> None:
        link_id = opt_str(item, "linkId", where)
        if link_id not in table.facts:
            return
        cited = Evidence(evidence.resource_type, evidence.reference, link_id, evidence.resolvable)
        for j, answer in enumerate(opt_list(item, "answer", where)):
            at = f"{where}.answer[{j}]"
            value = _answer(obj(answer, at), at, link_id, book, table)
            readings.append(Reading(link_id, value, when, cited, seen))

    _visit_items(resource, loc, read)
    return readings, [], status == "in-progress"


def _answer(answer: JSON, loc: str, fact: str, book: CodeBook, table: RuleTable) -> FactValue:
    kind = table.facts[fact].kind
    coding = opt_obj(answer, "valueCoding", loc)
    pair = coding_pair(coding, f"{loc}.valueCoding")
    if coding is not None and book.is_asked_unknown(*pair):
        return None
    if kind == "bool":
        if "valueBoolean" in answer:
            return opt_bool(answer, "valueBoolean", loc)
        if coding is not None and (yes := book.yes_no(*pair)) is not None:
            return yes
    elif kind == "side":
        if coding is not None and pair in book.side_by_code:
            return book.side_by_code[pair]
    elif kind == "days":
        days = opt_int(answer, "valueInteger", loc)
        if days is not None:
            if days < 0:
                raise Unprocessable(f"{loc}.valueInteger: a duration cannot be negative ({days})", loc)
            return days
    elif kind == "date":
        stamp = opt_datetime(answer, "valueDate", loc) or opt_datetime(answer, "valueDateTime", loc)
        if stamp is not None:
            return stamp
    elif kind == "score":
        value: int | float | None = opt_int(answer, "valueInteger", loc)
        if value is None:
            value = opt_number(answer, "valueDecimal", loc)
        if value is not None:
            if not 0 <= value <= 10:
                raise Unprocessable(f"{loc}: pain severity must be 0-10, got {value}", loc)
            return value
    raise InvalidInput(
        f"{loc}: answer to {fact!r} is not of the type the Questionnaire asks for ({kind})", loc
    )
