"""A Parameters part an operation takes at most once, given twice: 400 naming the part, never last-wins.

Which parts those are is read from the OperationDefinitions the server publishes (``max`` "1"), for every
operation and every route it has, so a part added later is covered without touching this test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from service import assess
from service.errors import InvalidInput
from tests.scenarios import SCENARIOS
from tests.support import CODES

S5 = json.loads((SCENARIOS / "S5-observations.json").read_text(encoding="utf-8"))
QUESTIONNAIRE = f"{CODES['canonicalBase']}/Questionnaire/neckcheck-screen"
ROUTES = {
    "assess": ["/fhir/$assess"],
    "populate": ["/fhir/Questionnaire/$populate", "/fhir/Questionnaire/neckcheck-screen/$populate"],
}
# a valid value of each parameter type the operations take
VALUES: dict[str, Callable[[], dict[str, Any]]] = {
    "Bundle": lambda: {"resource": S5},
    "dateTime": lambda: {"valueDateTime": "2026-03-10T09:00:00Z"},
    "code": lambda: {"valueCode": "collection"},
    "Reference": lambda: {"valueReference": {"reference": "Patient/scn-5"}},
    "canonical": lambda: {"valueCanonical": QUESTIONNAIRE},
}


def once_parts(client: FlaskClient) -> list[tuple[str, dict[str, Any]]]:
    """(route, in-parameter with max 1) for every published operation."""
    cases = []
    for operation, routes in ROUTES.items():
        definition = client.get(f"/fhir/OperationDefinition/{operation}").get_json()
        for parameter in definition["parameter"]:
            if parameter["use"] == "in" and parameter["max"] == "1":
                cases += [(route, parameter) for route in routes]
    return cases


def part(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, **VALUES[kind]()}


def refused(client: FlaskClient, route: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"resourceType": "Parameters", "parameter": parts}
    answer = client.post(route, data=json.dumps(body), content_type="application/fhir+json")
    assert answer.status_code == 400, (route, answer.get_data(as_text=True))
    outcome: dict[str, Any] = answer.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    return outcome


def test_every_part_an_operation_takes_once_is_refused_when_given_twice(client: FlaskClient) -> None:
    cases = once_parts(client)
    named = {(route, p["name"]) for route, p in cases}
    assert {("/fhir/$assess", n) for n in ("bundle", "asOf", "_output")} <= named
    assert {
        ("/fhir/Questionnaire/$populate", n) for n in ("bundle", "subject", "asOf", "questionnaire")
    } <= named
    for route, parameter in cases:
        name, kind = parameter["name"], parameter["type"]
        others = [part("bundle", "Bundle")] if name != "bundle" else []
        once = client.post(
            route,
            data=json.dumps({"resourceType": "Parameters", "parameter": [*others, part(name, kind)]}),
            content_type="application/fhir+json",
        )
        assert once.status_code == 200, (route, name, once.get_data(as_text=True))  # once is fine
        (issue,) = refused(client, route, [*others, part(name, kind), part(name, kind)])["issue"]
        assert f"more than one '{name}' part" in issue["diagnostics"], issue
        assert issue["expression"] == [f"Parameters.parameter[{len(others) + 1}]"]


def test_populate_counts_sdcs_other_name_of_the_questionnaire_part(client: FlaskClient) -> None:
    parts = [part("bundle", "Bundle"), part("questionnaire", "canonical"), part("canonical", "canonical")]
    (issue,) = refused(client, "/fhir/Questionnaire/$populate", parts)["issue"]
    assert "more than one 'questionnaire' part" in issue["diagnostics"]


def test_parts_an_operation_may_repeat_or_does_not_know_are_not_counted(client: FlaskClient) -> None:
    parts = [
        part("bundle", "Bundle"),
        {"name": "x-note", "valueString": "a"},
        {"name": "x-note", "valueString": "b"},
    ]
    body = {"resourceType": "Parameters", "parameter": parts}
    answer = client.post("/fhir/$assess", data=json.dumps(body), content_type="application/fhir+json")
    assert answer.status_code == 200


@pytest.mark.parametrize("name", ["bundle", "asOf"])
def test_the_library_refuses_a_repeated_part_too(name: str) -> None:
    kind = {"bundle": "Bundle", "asOf": "dateTime"}[name]
    parts = [part("bundle", "Bundle")] if name != "bundle" else []
    with pytest.raises(InvalidInput, match=f"more than one '{name}' part"):
        assess({"resourceType": "Parameters", "parameter": [*parts, part(name, kind), part(name, kind)]})
