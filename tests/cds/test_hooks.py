"""CDS Hooks services over HTTP: discovery, cards from prefetch, request validation, order-sign."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from service.packaged import SCHEMAS_DIR
from tests.cds.support import CDS_FIXTURES, hook_request, scenario_resources, searchset
from tests.scenarios import ASSESSED, EXPECTED, SCENARIOS
from tests.support import resources

PATIENT_VIEW = "/cds-services/neckcheck-patient-view"
ORDER_SIGN = "/cds-services/neckcheck-order-sign"
AS_OF = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
RESPONSE_SCHEMA = Draft202012Validator(
    json.loads((SCHEMAS_DIR / "cds-hooks" / "cards-response.schema.json").read_text(encoding="utf-8"))
)


@pytest.fixture()
def app(make_app: Callable[..., Flask]) -> Flask:
    app = make_app(insecure_dev=True)
    app.extensions["neckcheck.clock"] = lambda: AS_OF  # the scenarios' evaluation time
    return app


def call(client: FlaskClient, path: str, payload: Any) -> tuple[int, Any]:
    response = client.post(path, data=json.dumps(payload), content_type="application/json")
    return response.status_code, response.get_json(silent=True)


def expected_indicator(assessed: dict[str, Any]) -> str | None:
    """The issue's card rules, restated from the $assess answer (not from the card code)."""
    (ra,) = resources(assessed, "RiskAssessment")
    risks = {p["qualitativeRisk"]["coding"][0]["code"] for p in ra["prediction"]}
    fired = bool(resources(assessed, "ServiceRequest")) or any(
        "No escalation rule fired" not in p["outcome"]["text"] for p in ra["prediction"]
    )
    if ra["status"] == "final" and not fired:
        return None
    indicator = "critical" if "high" in risks else "warning" if "moderate" in risks else "info"
    if ra["status"] == "preliminary" and indicator == "info":
        indicator = "warning"
    return indicator


def comparable(service_request: dict[str, Any]) -> dict[str, Any]:
    """A ServiceRequest without what names the particular evaluation (ids, the RiskAssessment link)."""
    return {k: v for k, v in service_request.items() if k not in ("id", "identifier", "supportingInfo")}


def test_discovery_lists_both_services_with_prefetch_templates(client: FlaskClient) -> None:
    services = client.get("/cds-services").get_json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [
        ("neckcheck-patient-view", "patient-view"),
        ("neckcheck-order-sign", "order-sign"),
    ]
    spec_keys = set(json.loads((CDS_FIXTURES / "discovery-response.json").read_text())["services"][0])
    for service in services:
        assert spec_keys <= set(service) and service["usageRequirements"]
        prefetch = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        assert "http://snomed.info/sct|309557009" in prefetch["observations"]
        assert "patient={{context.patientId}}" in prefetch["observations"]
        assert (
            "questionnaire=https://neckcheck.org/fhir/Questionnaire/neckcheck-screen"
            in prefetch["questionnaireResponses"]
        )
        # how to register the app the cards link to, where the integrator registers the service
        assert service["extension"]["neckcheck-smart-app"] == {
            "launchUrl": "http://localhost/app/launch",
            "redirectUri": "http://localhost/app/",
            "clientId": "neckcheck",
            "clientType": "public (PKCE S256, no secret)",
            "scope": "launch openid fhirUser patient/Patient.r patient/Observation.rs "
            "patient/QuestionnaireResponse.cruds "
            "patient/RiskAssessment.c patient/ServiceRequest.c",
        }


@pytest.mark.parametrize("name", ASSESSED)
def test_card_matches_assess_for_the_same_data(client: FlaskClient, name: str) -> None:
    """One test drives both: the card's indicator and suggestions are what $assess says."""
    _, data = scenario_resources(name)
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "bundle",
                "resource": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": r} for r in data],
                },
            },
            {"name": "asOf", "valueDateTime": "2026-03-10T09:00:00Z"},
        ],
    }
    assessed = client.post("/fhir/$assess", data=json.dumps(params), content_type="application/fhir+json")
    assert assessed.status_code == 200
    status, response = call(client, PATIENT_VIEW, hook_request(name))
    assert status == 200
    RESPONSE_SCHEMA.validate(response)
    indicator = expected_indicator(assessed.get_json())
    if indicator is None:
        assert response["cards"] == []
        return
    (card,) = response["cards"]
    assert card["indicator"] == indicator
    proposed = [comparable(sr) for sr in resources(assessed.get_json(), "ServiceRequest")]
    created = [comparable(a["resource"]) for s in card.get("suggestions", []) for a in s["actions"]]
    assert created == proposed
    assert all(a["type"] == "create" for s in card.get("suggestions", []) for a in s["actions"])
    if EXPECTED[name]["status"] == "preliminary":
        assert "ask about" in card["summary"]


def test_preliminary_card_names_the_unassessed_urgent_signs(client: FlaskClient) -> None:
    _, response = call(client, PATIENT_VIEW, hook_request("S5-questionnaire.json"))
    (card,) = response["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Preliminary")
    for sign in ("vision change", "slurred speech", "weakness", "worsening"):
        assert sign in card["summary"] and sign in card["detail"]
    assert len(card["summary"]) <= 140
    (form,) = [link for link in card["links"] if "Questionnaire" in link["label"]]
    assert form == {
        "label": "Questions to ask (FHIR Questionnaire)",
        "url": "http://localhost/fhir/Questionnaire/neckcheck-screen",
        "type": "absolute",
    }
    assert client.get(form["url"]).status_code == 200
    # the app that asks those questions comes first, as a SMART link the EHR launches
    assert card["links"][0] == {
        "label": "Open in the neckcheck app",
        "url": "http://localhost/app/launch",
        "type": "smart",
    }
    assert client.get(card["links"][0]["url"]).status_code == 200


def test_a_final_card_links_no_questionnaire(client: FlaskClient) -> None:
    _, response = call(client, PATIENT_VIEW, hook_request("S1-observations.json"))
    (card,) = response["cards"]
    assert [(link["label"], link["type"]) for link in card["links"]] == [
        ("Rule set (FHIR PlanDefinition)", "absolute"),
        ("Open in the neckcheck app", "smart"),
    ]


def test_card_carries_source_override_reasons_and_the_plan_definition(client: FlaskClient) -> None:
    _, response = call(client, PATIENT_VIEW, hook_request("S1-observations.json"))
    (card,) = response["cards"]
    assert card["source"]["url"] == "http://localhost/fhir/PlanDefinition/neckcheck-escalation"
    assert card["source"]["topic"]["code"] == "309557009"
    assert card["links"][0]["url"] == card["source"]["url"]
    assert client.get("/fhir/PlanDefinition/neckcheck-escalation").status_code == 200
    assert {r["code"] for r in card["overrideReasons"]} >= {"patient-refuses", "indication-order-exists"}
    assert card["selectionBehavior"] == "any"
    assert "Article guideline 3" in card["detail"]


def test_prefetch_null_for_every_key_means_no_data_and_no_card(client: FlaskClient) -> None:
    request = hook_request("S1-observations.json")
    request["prefetch"] = {"patient": None, "observations": None, "questionnaireResponses": None}
    assert call(client, PATIENT_VIEW, request) == (200, {"cards": []})


@pytest.mark.parametrize(
    "bad_value",
    ["<html><body>502 Bad Gateway</body></html>", {"resourceType": "OperationOutcome"}, [1, 2]],
)
def test_a_prefetch_value_that_is_not_the_resource_counts_as_missing(
    client: FlaskClient, bad_value: Any
) -> None:
    request = hook_request("S1-observations.json")
    del request["fhirServer"], request["fhirAuthorization"]
    request["prefetch"]["observations"] = bad_value
    if not isinstance(bad_value, dict):
        # JSON Schema: prefetch values are objects or null; the strictest reading is a 400
        assert call(client, PATIENT_VIEW, request)[0] == 400
        return
    status, outcome = call(client, PATIENT_VIEW, request)
    assert status == 412
    assert outcome["resourceType"] == "OperationOutcome"
    assert "observations" in outcome["issue"][0]["diagnostics"]


def test_data_of_another_patient_is_refused(client: FlaskClient) -> None:
    request = hook_request("S1-observations.json", patientId="someone-else")
    request["prefetch"]["patient"] = None
    status, outcome = call(client, PATIENT_VIEW, request)
    assert status == 422
    assert "another patient" in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda r: r.pop("hookInstance"), "hookInstance"),
        (lambda r: r["context"].pop("patientId"), "patientId"),
        (lambda r: r.update(hook=7), "hook"),
        (lambda r: r.update(fhirAuthorization={"access_token": "x"}), "fhirAuthorization"),
        (  # a token no Authorization header can carry: refused, never sent (it was a 500)
            lambda r: r.update(
                fhirAuthorization={
                    "access_token": "t\u00f6k\u20acn",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "patient/Observation.rs",
                    "subject": "cds-service",
                }
            ),
            "fhirAuthorization/access_token",
        ),
        (lambda r: r.update(hook="order-sign"), "answers hook 'patient-view'"),
    ],
)
def test_a_malformed_request_is_a_400_saying_what(client: FlaskClient, change: Any, where: str) -> None:
    request = hook_request("S1-observations.json")
    change(request)
    status, outcome = call(client, PATIENT_VIEW, request)
    assert status == 400
    assert where in json.dumps(outcome)


def test_unknown_service_is_404(client: FlaskClient) -> None:
    assert call(client, "/cds-services/nope", hook_request("S1-observations.json"))[0] == 404


def test_not_json_is_400_and_wrong_content_type_is_415(client: FlaskClient) -> None:
    assert client.post(PATIENT_VIEW, data=b"{", content_type="application/json").status_code == 400
    assert client.post(PATIENT_VIEW, data=b"{}", content_type="text/plain").status_code == 415


def draft_orders(*codes: tuple[str, str], performer: tuple[str, str] | None = None) -> dict[str, Any]:
    spec = json.loads((CDS_FIXTURES / "context-order-sign-r4.json").read_text())["context"]["draftOrders"]
    for system, code in codes:
        order: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": "Patient/scn-1"},
        }
        if performer:
            order["performerType"] = {"coding": [{"system": performer[0], "code": performer[1]}]}
        spec["entry"].append({"resource": order})
    return spec


SCT = "http://snomed.info/sct"


def suggested(response: dict[str, Any]) -> list[str]:
    return [
        c["code"]
        for card in response["cards"]
        for s in card.get("suggestions", [])
        for a in s["actions"]
        for c in a["resource"]["code"]["coding"][:1]
    ]


def test_order_sign_does_not_suggest_an_order_already_drafted(client: FlaskClient) -> None:
    request = hook_request(
        "S1-observations.json", hook="order-sign", draftOrders=draft_orders((SCT, "816077007"))
    )
    status, response = call(client, ORDER_SIGN, request)
    assert status == 200
    RESPONSE_SCHEMA.validate(response)
    assert suggested(response) == ["neurology-referral"]


def test_order_sign_generic_referral_counts_only_with_the_neurologist(client: FlaskClient) -> None:
    generic = draft_orders((SCT, "306206005"))
    _, response = call(
        client, ORDER_SIGN, hook_request("S1-observations.json", hook="order-sign", draftOrders=generic)
    )
    assert "neurology-referral" in suggested(response)
    neuro = draft_orders((SCT, "306206005"), performer=(SCT, "56397003"))
    _, response = call(
        client, ORDER_SIGN, hook_request("S1-observations.json", hook="order-sign", draftOrders=neuro)
    )
    assert "neurology-referral" not in suggested(response)


def test_order_sign_says_when_only_the_cervical_spine_is_imaged(client: FlaskClient) -> None:
    request = hook_request(
        "S1-observations.json", hook="order-sign", draftOrders=draft_orders((SCT, "241646009"))
    )
    _, response = call(client, ORDER_SIGN, request)
    (card,) = response["cards"]
    assert "cervical spine" in card["detail"] and "brain" in card["detail"]
    assert card["summary"].startswith("Brain imaging, not cervical spine only")
    assert "mri-brain" in suggested(response)


def test_order_sign_with_everything_drafted_keeps_the_card_without_suggestions(client: FlaskClient) -> None:
    drafted = draft_orders((SCT, "816077007"), (SCT, "306206005"), performer=(SCT, "56397003"))
    _, response = call(
        client, ORDER_SIGN, hook_request("S1-observations.json", hook="order-sign", draftOrders=drafted)
    )
    (card,) = response["cards"]
    assert "suggestions" not in card and "selectionBehavior" not in card
    RESPONSE_SCHEMA.validate(response)


def test_scenario_data_split_into_prefetch_keys_is_what_the_fixture_holds() -> None:
    patient, data = scenario_resources("S12-observations.json")
    assert patient == "scn-12"
    assert searchset(data)["total"] == len(
        json.loads((SCENARIOS / "S12-observations.json").read_text())["entry"]
    )


def test_spec_example_response_validates_against_our_response_schema() -> None:
    """The schema is not stricter than the spec's own example (bar our summary length)."""
    example = json.loads((CDS_FIXTURES / "response-cards.json").read_text())
    Draft202012Validator(RESPONSE_SCHEMA.schema).validate(example)
