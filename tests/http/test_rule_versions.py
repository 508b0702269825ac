"""Each published artefact carries the rule set's lifecycle and is readable by version (issue 24)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.rules.table import RULES_DIR
from tests.rules.test_governance import METADATA
from tests.scenarios import SCENARIOS

PLAN = "/fhir/PlanDefinition/neckcheck-escalation"
LIBRARY = "/fhir/Library/neckcheck-escalation-logic"
LIFECYCLE = {"status": "active", **METADATA}


@pytest.mark.parametrize("path", [PLAN, LIBRARY, f"{PLAN}?version=1.1.0"])
def test_the_plan_definition_and_library_publish_the_lifecycle(client: FlaskClient, path: str) -> None:
    resource = client.get(path).get_json()
    assert resource["version"] == "1.1.0"
    assert {k: resource[k] for k in LIFECYCLE} == LIFECYCLE


def test_the_retired_version_is_readable_by_version(client: FlaskClient) -> None:
    plan = client.get(f"{PLAN}?version=1.0.0").get_json()
    assert (plan["version"], plan["status"], plan["date"]) == ("1.0.0", "retired", "2026-11-28")
    assert plan["effectivePeriod"] == {"start": "2026-11-28", "end": "2026-12-02"}
    assert "library" not in plan  # no CQL was ever made for 1.0.0: no link to a Library that is not there
    assert "any reading counts" in plan["description"]
    questionnaire = client.get("/fhir/Questionnaire/neckcheck-screen?version=1.0.0").get_json()
    assert questionnaire["version"] == "1.0.0"
    assert client.get(PLAN).get_json()["version"] == "1.1.0"  # the one it runs, without ?version


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (f"{PLAN}?version=9.9.9", "rule set version '9.9.9' not found; this server publishes 1.1.0, 1.0.0"),
        ("/fhir/Questionnaire/neckcheck-screen?version=2", "rule set version '2' not found"),
        (
            f"{LIBRARY}?version=1.0.0",
            "no computable library is packaged for rule set neckcheck-escalation 1.0.0",
        ),
        (f"{LIBRARY}/$data-requirements?version=1.0.0", "no computable library is packaged"),
    ],
)
def test_an_unknown_version_is_a_404_operation_outcome(client: FlaskClient, path: str, says: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert says in outcome["issue"][0]["diagnostics"]


def _module(client: FlaskClient, body: Any) -> str:
    """The PlanDefinition version an $assess answer names (GuidanceResponse.moduleCanonical)."""
    out = client.post(
        "/fhir/$assess", json=body, headers={"Content-Type": "application/fhir+json"}
    ).get_json()
    guidance = next(
        e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "GuidanceResponse"
    )
    module: str = guidance["moduleCanonical"]
    return module.rsplit("|", 1)[1]


def test_the_service_runs_the_table_named_and_an_as_of_never_changes_it(
    make_app: Callable[..., Flask], client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    bundle = json.loads((SCENARIOS / "S1-observations.json").read_bytes())
    # asOf before 1.1.0 took effect (1.0.0's period): the evaluation time moves, the table does not
    earlier = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "bundle", "resource": bundle},
            {"name": "asOf", "valueDateTime": "2026-11-30T00:00:00Z"},
        ],
    }
    assert _module(client, bundle) == _module(client, earlier) == "1.1.0"
    retired = make_app(rules_file=RULES_DIR / "neckcheck-escalation-1.0.0.json").test_client()
    said = [r.getMessage() for r in caplog.records if r.name == "neckcheck"]
    assert (
        "running rule table neckcheck-escalation 1.0.0, whose status is retired (NECKCHECK_RULES_FILE)"
        in said
    )
    assert retired.get(PLAN).get_json()["version"] == "1.0.0"
    assert _module(retired, bundle) == _module(retired, earlier) == "1.0.0"
