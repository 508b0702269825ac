"""The public scenarios as test cases: each input fixture with what scenarios.md expects of it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from service.fhir_values import parse_datetime

SCENARIOS = Path(__file__).parent / "fixtures" / "scenarios"
GOLDEN = Path(__file__).parent / "fixtures" / "golden"
EXPECTED: dict[str, Any] = json.loads((SCENARIOS / "expected.json").read_text())

# The scenarios' evaluation time: every scenario Bundle's timestamp (tests/fixtures/scenarios/build.py). Ages
# are measured to it (rules.md §1, evidence recency): against a later clock the same readings are stale.
AS_OF = dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)
_TIMES = (
    "effectiveDateTime",
    "effectiveInstant",
    "issued",
    "authored",
    "timestamp",
    "start",
    "end",
    "valueDate",
)

ASSESSED = sorted(name for name, exp in EXPECTED.items() if "status" in exp)
REFUSED = sorted(name for name, exp in EXPECTED.items() if "http" in exp)


def body(name: str) -> bytes:
    return (SCENARIOS / name).read_bytes()


def recorded_at(value: Any, when: dt.datetime) -> Any:
    """A copy of scenario JSON with every time moved by the same span, so the scenarios' evaluation time
    becomes ``when``: the same record, taken then. Every reading keeps its age (a date-only value moves by
    the span's whole days and the date its midnight lands on), so a server that assesses at its own
    clock gives the scenario's own answer."""
    span = when - AS_OF
    if isinstance(value, list):
        return [recorded_at(v, when) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in _TIMES and isinstance(item, str):
            moved = parse_datetime(item, key) + span
            item = moved.date().isoformat() if len(item) == 10 else moved.isoformat().replace("+00:00", "Z")
        out[key] = recorded_at(item, when)
    return out
