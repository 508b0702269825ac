"""The example inputs of ../shared/clinical/examples (copied to tests/fixtures/examples) give the results
their README (EXPECTED.md here) states; the expectations are parsed from that table, not retyped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support import summary

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "examples"


def stated() -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for line in (EXAMPLES / "EXPECTED.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`S"):
            continue
        name, _, status, risk, orders = cells
        parsed = sorted(
            ({"code": code, "priority": prio} for code, prio in re.findall(r"([\w-]+) \((\w+)\)", orders)),
            key=lambda o: o["code"],
        )
        rows.append((name.strip("`"), {"status": status, "risk": risk, "orders": parsed}))
    return rows


CASES = stated()


def test_every_example_is_stated() -> None:
    assert sorted(name for name, _ in CASES) == sorted(p.name for p in EXAMPLES.glob("*.json"))


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_example_gives_the_stated_result(client: FlaskClient, name: str, expected: dict[str, Any]) -> None:
    response = client.post(
        "/fhir/$assess", data=(EXAMPLES / name).read_bytes(), content_type="application/fhir+json"
    )
    assert response.status_code == 200
    assert summary(response.get_json()) == expected
