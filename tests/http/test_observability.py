"""Request ids, JSON request logs with no patient data or tokens, security headers, /readyz, /metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.cds.support import hook_request
from tests.scenarios import ASSESSED, body
from tests.tokens import Ehr, make_ehr


def test_request_id_is_echoed_or_made_up(client: FlaskClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "ehr-trace.42"}).headers["X-Request-ID"]
        == "ehr-trace.42"
    )
    made_up = client.get("/healthz", headers={"X-Request-ID": "bad id; <script>"}).headers["X-Request-ID"]
    assert len(made_up) == 36 and " " not in made_up


def test_security_headers_on_every_response(client: FlaskClient) -> None:
    for response in (
        client.get("/healthz"),
        client.get("/nope"),
        client.post("/fhir/$assess", data=body("S1-observations.json"), content_type="application/fhir+json"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.fields for r in caplog.records if r.name == "neckcheck.request"]  # type: ignore[attr-defined]


def test_one_json_request_line_per_request_with_the_route_template(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="neckcheck")
    client.get("/fhir/Questionnaire/neckcheck-screen", headers={"X-Request-ID": "abc"})
    (line,) = request_lines(caplog)
    assert line["route"] == "/fhir/Questionnaire/<rid>"
    assert (line["method"], line["status"], line["request_id"]) == ("GET", 200, "abc")
    assert isinstance(line["duration_ms"], float)
    from service.logs import JsonFormatter

    formatted = json.loads(JsonFormatter().format(caplog.records[-1]))
    assert formatted["route"] == "/fhir/Questionnaire/<rid>" and formatted["msg"] == "request"


def test_a_full_scenario_run_logs_no_patient_data_and_no_tokens(
    make_app: Callable[..., Flask], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every scenario through $assess and CDS Hooks, with real tokens; then search the captured logs."""
    caplog.set_level(logging.DEBUG)
    ehr: Ehr = make_ehr(tmp_path)
    client = make_app(**ehr.settings()).test_client()
    secrets: set[str] = set()
    for name in ASSESSED:
        token = ehr.token("http://localhost/fhir")
        secrets.add(token)
        client.post(
            "/fhir/$assess",
            data=body(name),
            content_type="application/fhir+json",
            headers={"Authorization": f"Bearer {token}"},
        )
        request = hook_request(name)
        token = ehr.token("http://localhost/cds-services/neckcheck-patient-view")
        secrets |= {token, request["fhirAuthorization"]["access_token"]}
        client.post(
            "/cds-services/neckcheck-patient-view",
            data=json.dumps(request),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
    client.post(
        "/fhir/$assess",
        data=body("S14-two-patients.json"),
        content_type="application/fhir+json",
        headers={"Authorization": "Bearer not-a-real-token-0123456789"},
    )
    secrets.add("not-a-real-token-0123456789")
    logged = caplog.text + "".join(json.dumps(getattr(r, "fields", {})) for r in caplog.records)
    assert len(request_lines(caplog)) == 2 * len(ASSESSED) + 1
    patients = {f"scn-{n}" for n in range(1, 15)} | {"scn-14a", "scn-14b"}
    for secret in secrets | patients:
        assert secret not in logged, secret


def test_readyz_and_metrics(client: FlaskClient) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    client.post("/fhir/$assess", data=body("S7-observations.json"), content_type="application/fhir+json")
    client.post(
        "/cds-services/neckcheck-patient-view",
        data=json.dumps(hook_request("S1-observations.json")),
        content_type="application/json",
    )
    text = client.get("/metrics").get_data(as_text=True)
    assert 'neckcheck_http_requests_total{method="POST",route="/fhir/$assess",status="200"} 1.0' in text
    assert 'neckcheck_assessments_total{risk="high",status="final"} 1.0' in text
    assert 'neckcheck_rule_fired_total{rule="urgent-signs"} 1.0' in text
    assert 'neckcheck_rule_fired_total{rule="imaging-referral"} 2.0' in text
    assert "neckcheck_http_request_seconds_bucket" in text
