"""Strict JSON reading for request bodies: every way a body can be unreadable becomes ``InvalidInput``.

Stricter than ``json.loads`` on purpose: NaN/Infinity and duplicate keys are not JSON a FHIR server may
accept (FHIR R4 §2.6.2 json: "no duplicate properties"), and a body nested deeper than the parser's
recursion limit is refused instead of crashing the worker.
"""

from __future__ import annotations

import json
import math
from typing import Any

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
