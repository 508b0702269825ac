"""Strict JSON reading for request bodies: every way a body can be unreadable becomes ``InvalidInput``.

Stricter than ``json.loads`` on purpose: NaN/Infinity and duplicate keys are not JSON a FHIR server may
accept (FHIR R4 §2.6.2 json: "no duplicate properties"), and a body nested deeper than the parser's
recursion limit is refused instead of crashing the worker.

Duplicate keys are found without a Python call per object in the common case: the body is parsed by the
C decoder alone, then one count tells whether any member was lost to a repeated key (``_no_member_lost``).
Only a body that fails that check, or fails to parse, goes through the strict per-object hook, which then
gives the exact error (the first problem in the text, as before).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from service.errors import InvalidInput


def _no_constants(name: str) -> Any:
    raise InvalidInput(f"{name} is not a valid JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise InvalidInput(f"number {text[:40]} is too large")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InvalidInput(f"duplicate JSON property {key!r}")
        obj[key] = value
    return obj


def parse_json(body: bytes | str) -> Any:
    """Parse a request body; raises ``InvalidInput`` saying why when it is not strict JSON."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"body is not UTF-8 (byte {exc.start})") from exc
    if not body.strip():
        raise InvalidInput("body is empty: expected a FHIR Bundle or Parameters resource as JSON")
    try:  # the common case: the C decoder alone, then one check that no key was repeated
        value = json.loads(body, parse_constant=_no_constants, parse_float=_finite)
    except (InvalidInput, ValueError, RecursionError):
        pass  # the strict parse below finds the same problem, or an earlier duplicate key, and says why
    else:
        if _no_member_lost(body, value):
            return value
    return _strict(body)


def _no_member_lost(text: str, value: Any) -> bool:
    """True only if every object member of ``text`` is in ``value`` (no key was repeated).

    Outside strings a JSON colon only separates a member's name from its value (RFC 8259 §4), and orjson
    writes every string's colons as they are. So the compact form of ``value`` holds as many colons as
    ``text`` exactly when no member was dropped for a repeated key, unless ``text`` spells a colon as the
    escape \\u003a (then no answer here: the strict parse decides). A value orjson cannot write (an integer
    beyond 64 bits, a lone surrogate, deep nesting) also goes to the strict parse.
    """
    if "\\u003a" in text or "\\u003A" in text:
        return False
    try:
        compact = orjson.dumps(value)
    except TypeError:
        return False
    return compact.count(b":") == text.count(":")


def _strict(body: str) -> Any:
    """``json.loads`` refusing duplicate keys object by object: the reference for ``parse_json``."""
    try:
        return json.loads(
            body, parse_constant=_no_constants, parse_float=_finite, object_pairs_hook=_no_duplicates
        )
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise InvalidInput(f"body has a number that cannot be read: {str(exc)[:80]}") from exc
    except RecursionError as exc:
        raise InvalidInput("body is nested too deeply to be a FHIR resource") from exc
