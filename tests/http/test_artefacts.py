"""The published artefacts: valid FHIR, generated from the same rule table the engine runs."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from service.rules.table import load_table
from tests.support import all_codings, known_codes, validate_fhir

TABLE = load_table()
PATHS = [
    "/fhir/metadata",
    "/fhir/OperationDefinition/assess",
    "/fhir/OperationDefinition/populate",
    "/fhir/Questionnaire/neckcheck-screen",
    "/fhir/PlanDefinition/neckcheck-escalation",
    "/fhir/Measure/neckcheck-escalation-gap",
    "/fhir/Library/neckcheck-escalation-logic",
    "/fhir/Library/neckcheck-escalation-logic/$data-requirements",
]


def get(client: FlaskClient, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    return response.get_json()


@pytest.mark.parametrize("path", PATHS)
def test_artefact_is_valid_fhir_with_known_codes(client: FlaskClient, path: str) -> None:
    resource = get(client, path)
    validate_fhir(resource)
    used = {(c["system"], c["code"]) for c in all_codings(resource)}
    assert used <= known_codes(), used - known_codes()


def test_capability_statement_declares_fhir_401_and_the_operation(client: FlaskClient) -> None:
    cs = get(client, "/fhir/metadata")
    assert cs["fhirVersion"] == "4.0.1"
    (operation,) = cs["rest"][0]["operation"]
    assert operation == {
        "name": "assess",
        "definition": "https://neckcheck.org/fhir/OperationDefinition/assess",
    }


def test_questionnaire_link_ids_are_the_fact_names(client: FlaskClient) -> None:
    q = get(client, "/fhir/Questionnaire/neckcheck-screen")
    assert q["url"] == "https://neckcheck.org/fhir/Questionnaire/neckcheck-screen"
    assert q["version"] == TABLE.version
    link_ids = [item["linkId"] for group in q["item"] for item in group["item"]]
    assert sorted(link_ids) == sorted(TABLE.facts)


def test_plan_definition_has_one_action_per_rule(client: FlaskClient) -> None:
    pd = get(client, "/fhir/PlanDefinition/neckcheck-escalation")
    assert [a["id"] for a in pd["action"]] == [r.id for r in TABLE.rules]
    urgent = pd["action"][0]
    assert urgent["priority"] == "stat"
    assert (
        "vision change present or slurred speech present"
        in urgent["condition"][0]["expression"]["description"]
    )


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Questionnaire/other",
        "/fhir/PlanDefinition/x",
        "/fhir/Measure/x",
        "/fhir/OperationDefinition/y",
        "/fhir/Library/z",
        "/fhir/Library/z/$data-requirements",
    ],
)
def test_other_ids_are_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_healthz_names_the_rule_set(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok", "rules": "neckcheck-escalation 1.1.0"}
