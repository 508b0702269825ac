"""The FHIR-server fallback against a real HTTP server on 127.0.0.1 that checks the bearer token.

Each failure of the server (slow, 500, not there) gives the specified 412 within the configured timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service.errors import ConfigError
from tests.cds.support import hook_request, scenario_resources, searchset

PATIENT_VIEW = "/cds-services/neckcheck-patient-view"
TOKEN = "opaque-ehr-access-token"


@pytest.fixture()
def app(make_app: Callable[..., Flask]) -> Flask:
    app = make_app(insecure_dev=True, fhir_read_timeout=0.5, fhir_connect_timeout=0.5, fhir_retries=1)
    app.extensions["neckcheck.clock"] = lambda: dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)
    return app


def without_prefetch(name: str, server: str) -> dict[str, Any]:
    request = hook_request(name, prefetch=False)
    request["fhirServer"] = server
    request["fhirAuthorization"]["access_token"] = TOKEN
    return request


def post(client: FlaskClient, payload: Any) -> tuple[int, Any, float]:
    start = time.monotonic()
    response = client.post(PATIENT_VIEW, data=json.dumps(payload), content_type="application/json")
    return response.status_code, response.get_json(silent=True), time.monotonic() - start


def serve_scenario(httpserver: HTTPServer, name: str, pages: int = 1) -> None:
    patient, data = scenario_resources(name)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    observations = [r for r in data if r["resourceType"] == "Observation"]
    responses = [r for r in data if r["resourceType"] == "QuestionnaireResponse"]
    httpserver.expect_request(f"/fhir/Patient/{patient}", headers=auth).respond_with_json(
        {"resourceType": "Patient", "id": patient}
    )
    chunks = [observations[i::pages] for i in range(pages)]
    for page, chunk in enumerate(chunks):
        bundle = searchset(chunk)
        if page + 1 < pages:
            bundle["link"] = [{"relation": "next", "url": httpserver.url_for(f"/fhir/page/{page + 1}")}]
        path = "/fhir/Observation" if page == 0 else f"/fhir/page/{page}"
        httpserver.expect_request(path, headers=auth).respond_with_json(bundle)
    httpserver.expect_request("/fhir/QuestionnaireResponse", headers=auth).respond_with_json(
        searchset(responses)
    )


@pytest.mark.parametrize(
    ("name", "indicator"), [("S1-observations.json", "warning"), ("S7-observations.json", "critical")]
)
def test_missing_prefetch_is_fetched_with_the_bearer_token(
    client: FlaskClient, httpserver: HTTPServer, name: str, indicator: str
) -> None:
    serve_scenario(httpserver, name, pages=3)
    status, response, _ = post(client, without_prefetch(name, httpserver.url_for("/fhir")))
    assert status == 200, response
    assert response["cards"][0]["indicator"] == indicator
    observation_search = next(req for req, _ in httpserver.log if req.path == "/fhir/Observation")
    assert observation_search.args["patient"] == scenario_resources(name)[0]
    assert "http://snomed.info/sct|309557009" in observation_search.args["code"].split(",")


def test_a_refused_token_is_412_saying_so(client: FlaskClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/fhir/Observation").respond_with_data("", status=401)
    httpserver.expect_request("/fhir/QuestionnaireResponse").respond_with_data("", status=401)
    httpserver.expect_request("/fhir/Patient/scn-1").respond_with_data("", status=401)
    status, outcome, _ = post(client, without_prefetch("S1-observations.json", httpserver.url_for("/fhir")))
    assert status == 412
    assert "refused the access token" in json.dumps(outcome)
    assert TOKEN not in json.dumps(outcome)


def test_a_server_answering_500_is_412_after_a_bounded_retry(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/fhir/Observation").respond_with_data("boom", status=500)
    httpserver.expect_request("/fhir/QuestionnaireResponse").respond_with_data("boom", status=500)
    httpserver.expect_request("/fhir/Patient/scn-1").respond_with_data("boom", status=500)
    status, outcome, elapsed = post(
        client, without_prefetch("S1-observations.json", httpserver.url_for("/fhir"))
    )
    assert status == 412
    assert outcome["resourceType"] == "OperationOutcome"
    observation_calls = [req for req, _ in httpserver.log if req.path == "/fhir/Observation"]
    assert len(observation_calls) == 2  # one try and one retry (NECKCHECK_FHIR_RETRIES=1)
    assert elapsed < 10


def test_a_slow_server_is_412_within_the_read_timeout(client: FlaskClient, httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.8)
        return Response(json.dumps(searchset([])), content_type="application/fhir+json")

    for path in ("/fhir/Observation", "/fhir/QuestionnaireResponse", "/fhir/Patient/scn-1"):
        httpserver.expect_request(path).respond_with_handler(slow)
    status, outcome, elapsed = post(
        client, without_prefetch("S1-observations.json", httpserver.url_for("/fhir"))
    )
    assert status == 412
    assert "timed out" in json.dumps(outcome)
    # three calls, each cut at the 0.5 s read timeout and never retried; the single-threaded test server
    # works through its 0.8 s handlers one at a time, so a later call may queue behind an earlier one
    assert elapsed < 4
    deadline = time.monotonic() + 5  # let the server finish its sleeping handlers before the next test
    while len(httpserver.log) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_server_that_is_not_there_is_412_quickly(client: FlaskClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status, outcome, elapsed = post(
        client, without_prefetch("S1-observations.json", f"http://127.0.0.1:{port}/fhir")
    )
    assert status == 412
    assert elapsed < 5
    assert {"observations", "questionnaireResponses"} <= {
        i.get("expression", [""])[0] for i in outcome["issue"]
    }


def test_no_prefetch_and_no_fhir_server_is_412(client: FlaskClient) -> None:
    request = hook_request("S1-observations.json", prefetch=False)
    del request["fhirServer"], request["fhirAuthorization"]
    status, outcome, _ = post(client, request)
    assert status == 412
    assert "no fhirServer" in json.dumps(outcome)


def test_a_paged_prefetch_fetches_its_next_page(client: FlaskClient, httpserver: HTTPServer) -> None:
    request = hook_request("S7-observations.json")
    observations = request["prefetch"]["observations"]
    rest = observations["entry"][3:]
    observations["entry"] = observations["entry"][:3]
    observations["link"] = [{"relation": "next", "url": httpserver.url_for("/fhir/Observation-page-2")}]
    httpserver.expect_request(
        "/fhir/Observation-page-2", headers={"Authorization": f"Bearer {TOKEN}"}
    ).respond_with_json({"resourceType": "Bundle", "type": "searchset", "entry": rest})
    request["fhirServer"] = httpserver.url_for("/fhir")
    request["fhirAuthorization"]["access_token"] = TOKEN
    status, response, _ = post(client, request)
    assert status == 200, response
    assert response["cards"][0]["indicator"] == "critical"
    assert len(httpserver.log) == 1


def test_a_slow_server_costs_the_hook_its_deadline_and_a_412(make_app: Callable[..., Flask]) -> None:
    """Each answer within the read timeout, but all of them together past NECKCHECK_CDS_FHIR_DEADLINE."""
    app = make_app(fhir_read_timeout=3, fhir_connect_timeout=1, fhir_retries=1, cds_fhir_deadline=1)
    release = threading.Event()
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)  # a slow answer does not queue the next

    def slow(request: Request) -> Response:
        release.wait(0.6)
        if request.path.startswith("/fhir/Patient/"):
            return Response(
                json.dumps({"resourceType": "Patient", "id": "scn-1"}), content_type="application/fhir+json"
            )
        return Response(json.dumps(searchset([])), content_type="application/fhir+json")

    server.expect_request(re.compile("/fhir/.*")).respond_with_handler(slow)
    server.start()
    try:
        status, outcome, elapsed = post(
            app.test_client(), without_prefetch("S1-observations.json", server.url_for("/fhir"))
        )
    finally:
        release.set()
        server.clear()
        server.stop()

    assert status == 412  # the same answer as for missing data
    assert outcome["resourceType"] == "OperationOutcome"
    assert "the 1 s time budget of the hook call ran out" in json.dumps(outcome)
    assert {"observations", "questionnaireResponses"} <= {
        i.get("expression", [""])[0] for i in outcome["issue"]
    }
    assert elapsed < 1 + 1.5  # a bound on behaviour (three 0.6 s reads would take 1.8 s), not a benchmark


def test_the_deadline_setting_is_checked_at_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match="NECKCHECK_CDS_FHIR_DEADLINE"):
        make_app(cds_fhir_deadline=0)
