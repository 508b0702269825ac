"""Typed access to FHIR JSON: each reader checks the type of the one field the intake needs.

A wrong type is the caller's error (400) at a FHIRPath-like location, never an AttributeError later.
The intake reads raw JSON rather than full fhir.resources models: it touches a dozen fields, and
checking exactly those keeps bad input a clear 4xx while staying fast on large Bundles.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from service.errors import InvalidInput
from service.fhir_values import INT32, parse_datetime

JSON = dict[str, Any]


def obj(value: Any, loc: str) -> JSON:
    if not isinstance(value, dict):
        raise InvalidInput(f"{loc} must be a JSON object", loc)
    return value


def opt(parent: JSON, key: str, kind: type | tuple[type, ...], loc: str) -> Any:
    """``parent[key]`` if present and of ``kind``; ``None`` if absent; 400 if of another type."""
    value = parent.get(key)
    if value is None or type(value) is kind:  # the common case, decided without isinstance (hot path)
        return value
    # bool is an int in Python; FHIR integers are never booleans
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise InvalidInput(f"{loc}.{key} has the wrong type (boolean)", f"{loc}.{key}")
    if not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InvalidInput(f"{loc}.{key} must be {_fhir_name(name)}", f"{loc}.{key}")
    return value


def _fhir_name(py: str) -> str:
    return {"dict": "an object", "list": "an array", "str": "a string", "bool": "a boolean"}.get(py, py)


# The three readers below run tens of thousands of times for a large Bundle: each answers the common
# case (absent, or of the right type) itself and leaves the error to ``opt``.


def opt_obj(parent: JSON, key: str, loc: str) -> JSON | None:
    value = parent.get(key)
    if value is None or type(value) is dict:
        return value
    return opt(parent, key, dict, loc)  # type: ignore[no-any-return]  # raises


def opt_list(parent: JSON, key: str, loc: str) -> list[Any]:
    value = parent.get(key)
    if type(value) is list:
        return value
    return opt(parent, key, list, loc) or []  # raises unless absent


def opt_str(parent: JSON, key: str, loc: str) -> str | None:
    value = parent.get(key)
    if value is None or type(value) is str:
        return value
    return opt(parent, key, str, loc)  # type: ignore[no-any-return]  # raises


def codings(concept: JSON | None, loc: str) -> list[tuple[str | None, str | None]]:
    """(system, code) pairs of a CodeableConcept, each checked to be strings."""
    if concept is None:
        return []
    pairs = []
    for i, raw in enumerate(opt_list(concept, "coding", loc)):
        if type(raw) is dict:  # the common case, without building a location (see opt_str)
            system, code = raw.get("system"), raw.get("code")
            if (system is None or type(system) is str) and (code is None or type(code) is str):
                pairs.append((system, code))
                continue
        where = f"{loc}.coding[{i}]"
        coding = obj(raw, where)
        pairs.append((opt_str(coding, "system", where), opt_str(coding, "code", where)))
    return pairs


def coding_pair(coding: JSON | None, loc: str) -> tuple[str | None, str | None]:
    """(system, code) of a single Coding (QuestionnaireResponse answers)."""
    if coding is None:
        return (None, None)
    return (opt_str(coding, "system", loc), opt_str(coding, "code", loc))


def opt_datetime(parent: JSON, key: str, loc: str) -> dt.datetime | None:
    text = opt_str(parent, key, loc)
    return None if text is None else parse_datetime(text, f"{loc}.{key}")


def opt_datetime_span(parent: JSON, key: str, loc: str) -> tuple[dt.datetime, dt.datetime] | None:
    """The first and the last instant a FHIR date/dateTime names: equal for a time; a day, month or year
    ends where the next begins (rules.md §1, recency: a reading dated yesterday is as young as the end of
    yesterday, so a date-only value is aged from the end of its day)."""
    text = opt_str(parent, key, loc)
    if text is None:
        return None
    start = parse_datetime(text, f"{loc}.{key}")
    return start, (start if len(text) > 10 else _period_end(start, len(text)))  # a time: one instant


def _period_end(start: dt.datetime, length: int) -> dt.datetime:
    """``length`` of a text ``_DATETIME`` matched tells its precision: YYYY, YYYY-MM, YYYY-MM-DD or a time."""
    try:
        if length == 10:
            return start + dt.timedelta(days=1)
        if length == 7:
            return (
                start.replace(year=start.year + 1, month=1)
                if start.month == 12
                else start.replace(month=start.month + 1)
            )
        if length == 4:
            return start.replace(year=start.year + 1)
    except (ValueError, OverflowError):
        return start  # the last representable period (year 9999): its start is the best we can say
    return start


def opt_bool(parent: JSON, key: str, loc: str) -> bool | None:
    value: bool | None = opt(parent, key, bool, loc)
    return value


def opt_int(parent: JSON, key: str, loc: str) -> int | None:
    value: int | None = opt(parent, key, int, loc)
    if value is not None and not INT32[0] <= value <= INT32[1]:
        raise InvalidInput(f"{loc}.{key} is outside the FHIR integer range", f"{loc}.{key}")
    return value


def opt_number(parent: JSON, key: str, loc: str) -> int | float | None:
    value: int | float | None = opt(parent, key, (int, float), loc)
    return value
