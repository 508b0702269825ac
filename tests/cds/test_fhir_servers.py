"""The FHIR server a hook may make neckcheck call: its issuer's list, loopback in insecure dev, no redirects.

Real HTTP servers on 127.0.0.1 stand for the EHR's FHIR server (and for a server it must never reach);
each test checks what reached them, not only the answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from service.fhir_base import FhirBase, base_of
from service.security.fhir_servers import FhirServerPolicy
from tests.cds.support import hook_request, scenario_resources, searchset
from tests.tokens import Ehr, make_ehr

PATIENT_VIEW = "/cds-services/neckcheck-patient-view"
AUDIENCE = f"http://localhost{PATIENT_VIEW}"
TOKEN = "opaque-ehr-access-token"


def serve(httpserver: HTTPServer, name: str = "S7-observations.json") -> None:
    patient, data = scenario_resources(name)
    httpserver.expect_request(f"/fhir/Patient/{patient}").respond_with_json(
        {"resourceType": "Patient", "id": patient}
    )
    observations = [r for r in data if r["resourceType"] == "Observation"]
    httpserver.expect_request("/fhir/Observation").respond_with_json(searchset(observations))
    httpserver.expect_request("/fhir/QuestionnaireResponse").respond_with_json(searchset([]))


def hook(server: str, name: str = "S7-observations.json", prefetch: bool = False) -> dict[str, Any]:
    request = hook_request(name, prefetch=prefetch)
    request["fhirServer"] = server
    request["fhirAuthorization"]["access_token"] = TOKEN
    return request


def call(client: FlaskClient, request: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    response = client.post(
        PATIENT_VIEW, data=json.dumps(request), content_type="application/json", headers=headers or {}
    )
    return response.status_code, response.get_json(silent=True)


def assert_refused(status: int, outcome: Any) -> None:
    assert status == 412
    assert outcome["issue"][0]["expression"] == ["fhirServer"]
    assert "fhirServer is not one this service may call" in outcome["issue"][0]["diagnostics"]


@pytest.fixture()
def listing(make_app: Callable[..., Flask], tmp_path: Path) -> Callable[..., tuple[FlaskClient, Ehr]]:
    """A secured app whose one trusted issuer lists ``servers`` as its fhirServers."""

    def build(*servers: str) -> tuple[FlaskClient, Ehr]:
        ehr = make_ehr(tmp_path, fhir_servers=servers)
        return make_app(**ehr.settings()).test_client(), ehr

    return build


@pytest.mark.parametrize(
    ("listed", "sent"),
    [
        ("http://127.0.0.1:{port}/fhir", "http://127.0.0.1:{port}/fhir"),
        ("HTTP://127.0.0.1:{port}/fhir/", "http://127.0.0.1:{port}/fhir"),
    ],
    ids=["as-listed", "normalised"],
)
def test_a_listed_fhir_server_is_fetched(
    listing: Callable[..., tuple[FlaskClient, Ehr]], httpserver: HTTPServer, listed: str, sent: str
) -> None:
    serve(httpserver)
    client, ehr = listing(listed.format(port=httpserver.port))
    sent = sent.format(port=httpserver.port)
    status, response = call(client, hook(sent), ehr.headers(AUDIENCE))
    assert status == 200, response
    assert response["cards"][0]["indicator"] == "critical"
    assert {req.path for req, _ in httpserver.log} == {
        "/fhir/Patient/scn-7",
        "/fhir/Observation",
        "/fhir/QuestionnaireResponse",
    }


@pytest.mark.parametrize(
    "listed",
    [
        "https://fhir.ehr.example/r4",  # another host
        "{url}/other",  # the same server, another base path
        "https://127.0.0.1:{port}/fhir",  # the same host and port, another scheme
    ],
)
def test_an_unlisted_fhir_server_is_never_called_and_the_refusal_is_logged(
    listing: Callable[..., tuple[FlaskClient, Ehr]],
    httpserver: HTTPServer,
    caplog: pytest.LogCaptureFixture,
    listed: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    serve(httpserver)
    client, ehr = listing(listed.format(url=httpserver.url_for("").rstrip("/"), port=httpserver.port))
    authorization = ehr.headers(AUDIENCE)
    assert_refused(*call(client, hook(httpserver.url_for("/fhir")), authorization))
    assert httpserver.log == []
    assert "fhirServer 'http://127.0.0.1:" in caplog.text and "not allowed for issuer" in caplog.text
    assert TOKEN not in caplog.text
    assert authorization["Authorization"].removeprefix("Bearer ") not in caplog.text


def test_an_unlisted_fhir_server_with_complete_prefetch_is_assessed_without_a_call(
    listing: Callable[..., tuple[FlaskClient, Ehr]], httpserver: HTTPServer
) -> None:
    """Complete prefetch never needs the server, so naming an unlisted one does not block the card."""
    serve(httpserver)
    client, ehr = listing("https://fhir.ehr.example/r4")
    status, response = call(client, hook(httpserver.url_for("/fhir"), prefetch=True), ehr.headers(AUDIENCE))
    assert status == 200
    assert response["cards"][0]["indicator"] == "critical"
    assert httpserver.log == []


def test_a_paged_prefetch_on_an_unlisted_server_is_refused_before_its_next_page(
    listing: Callable[..., tuple[FlaskClient, Ehr]], httpserver: HTTPServer
) -> None:
    request = hook(httpserver.url_for("/fhir"), prefetch=True)
    observations = request["prefetch"]["observations"]
    observations["entry"] = observations["entry"][:3]
    observations["link"] = [{"relation": "next", "url": httpserver.url_for("/fhir/Observation-page-2")}]
    httpserver.expect_request("/fhir/Observation-page-2").respond_with_json(searchset([]))
    client, ehr = listing("https://fhir.ehr.example/r4")
    assert_refused(*call(client, request, ehr.headers(AUDIENCE)))
    assert httpserver.log == []


def test_an_issuer_without_fhir_servers_may_send_prefetch_only(
    listing: Callable[..., tuple[FlaskClient, Ehr]], httpserver: HTTPServer
) -> None:
    serve(httpserver)
    client, ehr = listing()
    assert_refused(*call(client, hook(httpserver.url_for("/fhir")), ehr.headers(AUDIENCE)))
    assert httpserver.log == []


# NECKCHECK_INSECURE_DEV=1: loopback only


@pytest.fixture()
def dev(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app(insecure_dev=True).test_client()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_insecure_dev_fetches_from_loopback(dev: FlaskClient, httpserver: HTTPServer, host: str) -> None:
    serve(httpserver)
    status, response = call(dev, hook(httpserver.url_for("/fhir").replace("127.0.0.1", host)))
    assert status == 200, response
    assert len(httpserver.log) == 3


@pytest.mark.parametrize(
    "server",
    [
        "http://192.0.2.10/fhir",  # TEST-NET-1: an address that is not loopback
        "http://hooks.smarthealthit.org:9080",
        "http://127.0.0.1.nip.io/fhir",  # a name, not a literal loopback address
        "http://user@127.0.0.1/fhir",
    ],
)
def test_insecure_dev_refuses_any_other_fhir_server(dev: FlaskClient, server: str) -> None:
    assert_refused(*call(dev, hook(server)))


# redirects


@pytest.fixture()
def elsewhere() -> Iterator[HTTPServer]:
    """A second server on 127.0.0.1: where a redirect points, and what must never be reached."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_a_redirect_from_the_fhir_server_is_not_followed(
    dev: FlaskClient, httpserver: HTTPServer, elsewhere: HTTPServer
) -> None:
    elsewhere.expect_request("/fhir/Observation").respond_with_json(searchset([]))
    for path in ("/fhir/Patient/scn-7", "/fhir/Observation", "/fhir/QuestionnaireResponse"):
        location = elsewhere.url_for(path)
        httpserver.expect_request(path).respond_with_data("", status=302, headers={"Location": location})
    status, outcome = call(dev, hook(httpserver.url_for("/fhir")))
    assert status == 412
    assert "redirected the request (not followed) (302)" in json.dumps(outcome)
    assert len(httpserver.log) == 3
    assert elsewhere.log == []


# the comparison itself


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://EHR.example/FHIR/r4/", FhirBase("https", "ehr.example", 443, "/FHIR/r4")),
        ("https://ehr.example:443/fhir", FhirBase("https", "ehr.example", 443, "/fhir")),
        ("http://ehr.example", FhirBase("http", "ehr.example", 80, "")),
        ("http://[::1]:8080/fhir", FhirBase("http", "::1", 8080, "/fhir")),
        ("ftp://ehr.example/fhir", None),
        ("https://ehr.example/fhir?_format=json", None),
        ("https://ehr.example/fhir#x", None),
        ("https://ehr.example@evil.example/fhir", None),
        ("https://ehr.example:port/fhir", None),
        ("https:///fhir", None),
        ("not a url", None),
    ],
)
def test_base_urls_are_compared_normalised(url: str, base: FhirBase | None) -> None:
    assert base_of(url) == base


def test_the_policies() -> None:
    listed = FhirServerPolicy("issuer 'x'", frozenset({FhirBase("https", "ehr.example", 443, "/fhir")}))
    assert listed.permits("https://ehr.example:443/fhir/")
    assert not listed.permits("https://ehr.example/fhir/other")
    assert not listed.permits("http://127.0.0.1/fhir")
    dev = FhirServerPolicy.insecure_dev()
    for loopback in (
        "http://127.0.0.1:9/fhir",
        "http://127.8.9.10/fhir",
        "http://[::1]/fhir",
        "http://localhost",
    ):
        assert dev.permits(loopback), loopback
    for other in ("https://ehr.example/fhir", "http://10.0.0.1/fhir", "http://[::2]/", "http://0.0.0.0/"):
        assert not dev.permits(other), other
