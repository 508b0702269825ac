"""The public scenarios as test cases: each input fixture with what scenarios.md expects of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).parent / "fixtures" / "scenarios"
GOLDEN = Path(__file__).parent / "fixtures" / "golden"
EXPECTED: dict[str, Any] = json.loads((SCENARIOS / "expected.json").read_text())

ASSESSED = sorted(name for name, exp in EXPECTED.items() if "status" in exp)
REFUSED = sorted(name for name, exp in EXPECTED.items() if "http" in exp)


def body(name: str) -> bytes:
    return (SCENARIOS / name).read_bytes()
