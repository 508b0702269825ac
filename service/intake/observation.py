"""Observation → readings (rules.md §4, both Observation patterns).

Pattern 1: ``code`` is the fact's code; the value is ``valueBoolean``, a Y/N ``valueCodeableConcept``, or
absent (a coded finding on its own means present). Pattern 2: ``code`` is LOINC 75325-1 (Symptom) and the
finding is the ``valueCodeableConcept``. Side and duration may ride on the facial-numbness Observation.
"""

from __future__ import annotations

import datetime as dt
import math

from service.codebook import CodeBook
from service.errors import InvalidInput, Unprocessable
from service.fhir_values import INT32, parse_datetime
from service.intake.fields import (
    JSON,
    codings,
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

USED = ("preliminary", "final", "amended", "corrected")
IGNORED = ("entered-in-error", "cancelled")


def observation_fact(resource: JSON, loc: str, book: CodeBook) -> tuple[str | None, bool]:
    """The fact an Observation speaks of, and whether it speaks through the Symptom pattern."""
    code = opt_obj(resource, "code", loc)
    facts = {book.fact_by_code[p] for p in codings(code, f"{loc}.code") if p in book.fact_by_code}
    if len(facts) > 1:
        raise Unprocessable(f"{loc}.code names several facts ({', '.join(sorted(facts))})", f"{loc}.code")
    if facts:
        return facts.pop(), False
    if any(book.is_symptom_code(*p) for p in codings(code, f"{loc}.code")):
        value = opt_obj(resource, "valueCodeableConcept", loc)
        found = {
            book.fact_by_code[p]
            for p in codings(value, f"{loc}.valueCodeableConcept")
            if p in book.fact_by_code
        }
        if len(found) == 1:
            return found.pop(), True
        if len(found) > 1:
            raise Unprocessable(f"{loc}.valueCodeableConcept names several findings", loc)
    return None, False


def observation_time(resource: JSON, loc: str) -> dt.datetime | None:
    """When it was true: effective[x], else issued (the conflict rule's "latest")."""
    return observation_times(resource, loc)[0]


def observation_times(resource: JSON, loc: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Its time and the instant its age runs from (rules.md §1; see ``Reading``).

    Time: effectiveDateTime / effectiveInstant, an effectivePeriod's start (else its end), else issued.
    Age from: the end of what effectiveDateTime names (a date-only value: the end of that day), the
    effectiveInstant, the period's end (``None`` while the period is open: still going on), else issued.
    """
    span = opt_datetime_span(resource, "effectiveDateTime", loc)
    if span is not None:
        return span
    instant = opt_datetime(resource, "effectiveInstant", loc)
    if instant is not None:
        return instant, instant
    period = opt_obj(resource, "effectivePeriod", loc)
    if period is not None:
        where = f"{loc}.effectivePeriod"
        start, end = opt_datetime(period, "start", where), opt_datetime_span(period, "end", where)
        if end is not None:
            return start or end[0], end[1]
        if start is not None:
            return start, None
    issued = opt_datetime(resource, "issued", loc)
    return issued, issued


# The keys of the commonest Observation an EHR sends: one coded finding, a boolean value, a full dateTime.
# What intake does not read (meta, category, issued beside effective[x]) may be there too.
_PLAIN_KEYS = frozenset(
    {"resourceType", "id", "meta", "status", "category", "code", "subject", "encounter"}
    | {"effectiveDateTime", "issued", "valueBoolean"}
)
_PLAIN_CODING_KEYS = frozenset({"system", "code", "display"})


def plain_reading(
    resource: JSON, loc: str, evidence: Evidence, book: CodeBook, table: RuleTable
) -> Reading | None:
    """The reading of a plain Observation in one typed pass, or None for any other shape.

    Plain: a used status, ``code`` with exactly one coding naming a boolean fact, ``valueBoolean``, and a
    full ``effectiveDateTime`` (its own last instant). That is most of what a prefetch holds; it gives
    exactly what ``observation_readings`` gives for it (tests/intake/test_observation.py compares the two
    over generated Observations), with a few dictionary reads instead of a walk through every reader.
    Anything else, malformed or merely less common, is read the general way, which says what is wrong.
    """
    if not _PLAIN_KEYS.issuperset(resource):
        return None
    status, value, code = resource.get("status"), resource.get("valueBoolean"), resource.get("code")
    if type(value) is not bool or type(status) is not str or status not in USED or type(code) is not dict:
        return None
    coding = code.get("coding")
    if len(code) > 2 or (len(code) == 2 and type(code.get("text")) is not str):
        return None
    if type(coding) is not list or len(coding) != 1 or type(coding[0]) is not dict:
        return None
    pair = coding[0]
    if not _PLAIN_CODING_KEYS.issuperset(pair):
        return None
    fact = book.fact_by_code.get((pair.get("system"), pair.get("code")))
    text = resource.get("effectiveDateTime")
    if fact is None or table.facts[fact].kind != "bool" or type(text) is not str or len(text) <= 10:
        return None
    when = parse_datetime(text, f"{loc}.effectiveDateTime")
    return Reading(fact, value, when, evidence, when)


def observation_readings(
    resource: JSON, loc: str, evidence: Evidence, book: CodeBook, table: RuleTable
) -> tuple[list[Reading], list[Skipped]]:
    plain = plain_reading(resource, loc, evidence, book, table)
    if plain is not None:
        return [plain], []
    return general_readings(resource, loc, evidence, book, table)


def general_readings(
    resource: JSON, loc: str, evidence: Evidence, book: CodeBook, table: RuleTable
) -> tuple[list[Reading], list[Skipped]]:
    """Every shape of rules.md §4, each field read and type-checked on its own."""
    fact, via_symptom = observation_fact(resource, loc, book)
    if fact is None:
        return [], [Skipped(loc, "Observation of no neckcheck fact")]
    status = opt_str(resource, "status", loc)
    if status is None:
        raise InvalidInput(f"{loc}.status is required", f"{loc}.status")
    if status not in USED:
        why = "entered in error" if status == "entered-in-error" else f"status {status}"
        return [], [Skipped(loc, f"{fact}: not used ({why})")]
    when, seen = observation_times(resource, loc)
    if via_symptom:
        if table.facts[fact].kind == "bool":
            return [Reading(fact, True, when, evidence, seen)], []
        # "present" is a yes/no value: a side, duration, onset or score must be stated (unknown is not no)
        note = Skipped(loc, f"{fact}: a Symptom Observation states no value for it, taken as unknown")
        return [Reading(fact, None, when, evidence, seen)], [note]
    if opt_obj(resource, "dataAbsentReason", loc) is not None:
        return [Reading(fact, None, when, evidence, seen)], []
    kind = table.facts[fact].kind
    value, skipped = _value(resource, loc, kind, fact, book)
    readings = [Reading(fact, value, when, evidence, seen)]
    if fact == "facial-numbness" and value is True:
        readings += _riders(resource, loc, when, seen, evidence, book)
    return readings, skipped


def _value(resource: JSON, loc: str, kind: str, fact: str, book: CodeBook) -> tuple[FactValue, list[Skipped]]:
    """The Observation's own value for a fact of ``kind``; an unreadable value is unknown, with a note."""
    if kind == "bool":
        if "valueBoolean" in resource:
            return opt_bool(resource, "valueBoolean", loc), []
        if "valueCodeableConcept" in resource:
            concept = opt_obj(resource, "valueCodeableConcept", loc)
            for pair in codings(concept, f"{loc}.valueCodeableConcept"):
                answer = book.yes_no(*pair)
                if answer is not None:
                    return answer, []
                if book.is_asked_unknown(*pair):
                    return None, []
        elif not any(k.startswith("value") for k in resource):
            return True, []  # a coded finding with no value: present (rules.md §4)
    elif kind == "side":
        side = _side(opt_obj(resource, "valueCodeableConcept", loc), f"{loc}.valueCodeableConcept", book)
        if side is not None:
            return side, []
    elif kind == "days":
        days = duration_days(resource, loc, book)
        if days is not None:
            return days, []
    elif kind == "date":
        stamp = opt_datetime(resource, "valueDateTime", loc)
        if stamp is not None:
            return stamp, []
    elif kind == "score":
        return score(resource, loc), []
    return None, [Skipped(loc, f"{fact}: value not understood, taken as unknown")]


def _side(concept: JSON | None, loc: str, book: CodeBook) -> str | None:
    sides = {book.side_by_code[p] for p in codings(concept, loc) if p in book.side_by_code}
    if len(sides) > 1:
        raise Unprocessable(f"{loc} names several sides", loc)
    return sides.pop() if sides else None


def duration_days(holder: JSON, loc: str, book: CodeBook) -> int | float | None:
    """Days, as exact as given: ``valueQuantity`` in a UCUM unit of codes.json, or ``valueInteger`` days.

    Not rounded here: the reading's age is added first, then the sum is rounded down (rules.md §1: 36 h
    recorded 12 h ago is 1.5 + 0.5 = 2 days). ``resolve`` in intake/bundle.py does that.
    """
    if "valueInteger" in holder:
        return _non_negative(opt_int(holder, "valueInteger", loc), f"{loc}.valueInteger")
    quantity = opt_obj(holder, "valueQuantity", loc)
    if quantity is None:
        return None
    where = f"{loc}.valueQuantity"
    number = opt_number(quantity, "value", where)
    factor = book.days_per_unit(opt_str(quantity, "system", where), opt_str(quantity, "code", where))
    if number is None or factor is None:
        return None
    try:
        days = float(number * factor)
    except OverflowError:
        days = math.inf
    if not math.isfinite(days) or abs(days) > INT32[1]:
        raise Unprocessable(
            f"{where}: {number!r} {opt_str(quantity, 'code', where)} is not a plausible duration", where
        )
    return _non_negative(int(days) if days.is_integer() else days, where)


def _non_negative(days: int | float | None, loc: str) -> int | float | None:
    if days is not None and days < 0:
        raise Unprocessable(f"{loc}: a duration cannot be negative ({days})", loc)
    return days


def score(holder: JSON, loc: str) -> int | float | None:
    value: int | float | None = opt_int(holder, "valueInteger", loc)
    if value is None and (quantity := opt_obj(holder, "valueQuantity", loc)) is not None:
        value = opt_number(quantity, "value", f"{loc}.valueQuantity")
    if value is not None and not 0 <= value <= 10:
        raise Unprocessable(f"{loc}: pain severity must be 0-10, got {value}", loc)
    return value


def _riders(
    resource: JSON,
    loc: str,
    when: dt.datetime | None,
    seen: dt.datetime | None,
    evidence: Evidence,
    book: CodeBook,
) -> list[Reading]:
    """Side and duration carried on the facial-numbness Observation itself (component, bodySite, period)."""
    out: list[Reading] = []
    for i, raw in enumerate(opt_list(resource, "component", loc)):
        where = f"{loc}.component[{i}]"
        component = obj(raw, where)
        pairs = codings(opt_obj(component, "code", where), f"{where}.code")
        if any(book.is_laterality_attribute(*p) for p in pairs):
            concept = opt_obj(component, "valueCodeableConcept", where)
            side = _side(concept, f"{where}.valueCodeableConcept", book)
            if side is not None:
                out.append(Reading("facial-numbness-side", side, when, evidence, seen))
        elif any(book.fact_by_code.get(p) == "facial-numbness-days" for p in pairs):
            days = duration_days(component, where, book)
            if days is not None:
                out.append(Reading("facial-numbness-days", days, when, evidence, seen))
    side = _side(opt_obj(resource, "bodySite", loc), f"{loc}.bodySite", book)
    if side is not None:
        out.append(Reading("facial-numbness-side", side, when, evidence, seen))
    period = opt_obj(resource, "effectivePeriod", loc)
    onset = None if period is None else opt_datetime(period, "start", f"{loc}.effectivePeriod")
    if onset is not None:
        out.append(Reading("facial-numbness-onset", onset, when, evidence, seen))
    return out
