"""$populate over HTTP (both SDC routes), the published OperationDefinition and CapabilityStatement, and the
loop docs/integration/sdc.md shows: data -> preliminary + GuidanceResponse -> $populate -> answer the rest
-> final."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.scenarios import SCENARIOS
from tests.support import CODES, bundle_of, observation, resources, summary, validate_fhir

FHIR = "application/fhir+json"
QUESTIONNAIRE = f"{CODES['canonicalBase']}/Questionnaire/neckcheck-screen"
S5 = json.loads((SCENARIOS / "S5-observations.json").read_text(encoding="utf-8"))


def post(client: FlaskClient, path: str, body: Any, **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type=FHIR, headers=headers)


def parameters(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parts)}


def test_instance_route_answers_parameters_with_an_in_progress_response(client: FlaskClient) -> None:
    body = parameters(
        {"name": "subject", "valueReference": {"reference": "Patient/scn-5"}},
        {"name": "bundle", "resource": S5},
    )
    response = post(client, "/fhir/Questionnaire/neckcheck-screen/$populate", body)
    assert response.status_code == 200 and response.mimetype == FHIR
    out = response.get_json()
    validate_fhir(out)
    (part,) = out["parameter"]
    assert part["name"] == "response" and part["resource"]["status"] == "in-progress"


def test_type_route_takes_the_questionnaire_canonical(client: FlaskClient) -> None:
    body = parameters(
        {"name": "questionnaire", "valueCanonical": f"{QUESTIONNAIRE}|1.1.0"},
        {"name": "bundle", "resource": S5},
    )
    ok = post(client, "/fhir/Questionnaire/$populate", body)
    assert ok.status_code == 200
    same = post(client, "/fhir/Questionnaire/neckcheck-screen/$populate", body)
    assert ok.data == same.data  # deterministic, whichever route
    other = parameters(
        {"name": "questionnaire", "valueCanonical": "http://x.org/Questionnaire/phq9"}, body["parameter"][1]
    )
    missing = post(client, "/fhir/Questionnaire/$populate", other)
    assert (
        missing.status_code == 404
        and "neckcheck-screen|1.1.0" in missing.get_json()["issue"][0]["diagnostics"]
    )


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/fhir/Questionnaire/other/$populate", S5, 404),
        ("/fhir/Questionnaire/$populate", {"resourceType": "Patient"}, 400),
        (
            "/fhir/Questionnaire/$populate",
            parameters(
                {"name": "bundle", "resource": S5},
                {"name": "subject", "valueReference": {"reference": "Patient/x"}},
            ),
            422,
        ),
        (
            "/fhir/Questionnaire/$populate",
            parameters({"name": "subject", "valueReference": {"reference": "Patient/scn-5"}}),
            400,
        ),
    ],
)
def test_bad_requests_are_operation_outcomes(client: FlaskClient, path: str, body: Any, status: int) -> None:
    response = post(client, path, body)
    assert response.status_code == status
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = client.post("/fhir/Questionnaire/$populate", data=json.dumps(S5), content_type="text/plain")
    assert response.status_code == 415


def test_populate_needs_a_token_like_assess(make_app: Callable[..., Flask]) -> None:
    client = make_app(insecure_dev=False).test_client()
    assert post(client, "/fhir/Questionnaire/neckcheck-screen/$populate", S5).status_code == 401


def test_operation_definition_and_capability_statement_list_populate(client: FlaskClient) -> None:
    od = client.get("/fhir/OperationDefinition/populate").get_json()
    validate_fhir(od)
    assert (od["code"], od["type"], od["instance"], od["resource"]) == (
        "populate",
        True,
        True,
        ["Questionnaire"],
    )
    assert od["base"] == "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate"
    assert {p["name"] for p in od["parameter"]} == {
        "questionnaire",
        "subject",
        "bundle",
        "asOf",
        "response",
        "issues",
    }
    cs = client.get("/fhir/metadata").get_json()
    (q,) = [r for r in cs["rest"][0]["resource"] if r["type"] == "Questionnaire"]
    assert q["operation"] == [
        {"name": "populate", "definition": f"{CODES['canonicalBase']}/OperationDefinition/populate"}
    ]
    assert client.get("/fhir/OperationDefinition/nope").status_code == 404


def _answer_the_rest(qr: dict[str, Any], values: dict[str, bool]) -> dict[str, Any]:
    """A nurse answers the unanswered questions the form shows, then completes the form."""
    filled = json.loads(json.dumps(qr))
    for group in filled["item"]:
        for question in group["item"]:
            if "answer" not in question and question["linkId"] in values:
                question["answer"] = [{"valueBoolean": values[question["linkId"]]}]
    return {**filled, "status": "completed"}


def test_the_loop_data_then_populate_then_answer_the_rest_gives_a_final_result(client: FlaskClient) -> None:
    first = post(client, "/fhir/$assess", S5).get_json()
    assert summary(first)["status"] == "preliminary"
    (guidance,) = resources(first, "GuidanceResponse")
    asked = [
        e["valueString"]
        for req in guidance["dataRequirement"]
        for ext in req["extension"]
        for e in ext["extension"]
        if e["url"] == "linkId"
    ]
    populated = post(
        client,
        "/fhir/Questionnaire/neckcheck-screen/$populate",
        parameters({"name": "bundle", "resource": S5}),
    )
    qr = populated.get_json()["parameter"][0]["resource"]
    needed = [
        q["linkId"]
        for g in qr["item"]
        for q in g["item"]
        if any(e["url"].endswith("/needed-for-final") for e in q.get("extension", []))
    ]
    assert needed == asked
    completed = _answer_the_rest(qr, dict.fromkeys(asked, False))
    final = post(client, "/fhir/$assess", bundle_of(completed, timestamp=S5["timestamp"])).get_json()
    assert summary(final)["status"] == "final"
    assert summary(final)["orders"] == summary(first)["orders"]
    (done,) = resources(final, "GuidanceResponse")
    assert done["status"] == "success"


def test_one_observation_is_enough_to_populate(client: FlaskClient) -> None:
    out = post(client, "/fhir/Questionnaire/$populate", bundle_of(observation("weakness", True))).get_json()
    items = {q["linkId"]: q for g in out["parameter"][0]["resource"]["item"] for q in g["item"]}
    assert items["weakness"]["answer"][0]["valueBoolean"] is True
