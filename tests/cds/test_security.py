"""CDS Hooks security over HTTP: on by default, bare 401s, the audience is the endpoint, CORS by allowlist."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.config import Settings
from service.errors import ConfigError
from tests.cds.support import hook_request
from tests.tokens import Ehr, make_ehr

SERVICE = "/cds-services/neckcheck-patient-view"
AUDIENCE = "http://localhost/cds-services/neckcheck-patient-view"


@pytest.fixture()
def ehr(tmp_path: Path) -> Ehr:
    return make_ehr(tmp_path)


@pytest.fixture()
def secured(make_app: Callable[..., Flask], ehr: Ehr) -> FlaskClient:
    return make_app(
        **ehr.settings(),
        cors_origins="https://ehr.example.org",
    ).test_client()


def post(
    client: FlaskClient, headers: dict[str, str] | None = None, path: str = SERVICE
) -> tuple[int, bytes]:
    body = json.dumps(hook_request("S1-observations.json"))
    response = client.post(path, data=body, content_type="application/json", headers=headers or {})
    return response.status_code, response.data


def test_by_default_a_call_without_a_token_is_a_bare_401(make_app: Callable[..., Flask]) -> None:
    status, body = post(make_app(insecure_dev=False).test_client())
    assert (status, body) == (401, b"")


def test_discovery_needs_no_token(make_app: Callable[..., Flask]) -> None:
    assert make_app(insecure_dev=False).test_client().get("/cds-services").status_code == 200


def test_a_valid_token_for_this_endpoint_is_served(secured: FlaskClient, ehr: Ehr) -> None:
    status, body = post(secured, ehr.headers(AUDIENCE))
    assert status == 200
    assert json.loads(body)["cards"][0]["indicator"] == "warning"


def test_a_token_for_the_other_service_is_refused(secured: FlaskClient, ehr: Ehr) -> None:
    other = "http://localhost/cds-services/neckcheck-order-sign"
    assert post(secured, ehr.headers(other)) == (401, b"")


def test_a_replayed_token_is_refused(secured: FlaskClient, ehr: Ehr) -> None:
    headers = ehr.headers(AUDIENCE)
    assert post(secured, headers)[0] == 200
    assert post(secured, headers) == (401, b"")


def test_an_expired_token_is_refused(secured: FlaskClient, ehr: Ehr) -> None:
    assert post(secured, ehr.headers(AUDIENCE, exp=1_000_000_000, iat=999_999_000)) == (401, b"")


def test_feedback_needs_a_token_too(secured: FlaskClient, ehr: Ehr) -> None:
    payload = json.dumps(
        {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01"}]}
    )
    path = f"{SERVICE}/feedback"
    assert secured.post(path, data=payload, content_type="application/json").status_code == 401
    ok = secured.post(path, data=payload, content_type="application/json", headers=ehr.headers(AUDIENCE))
    assert ok.status_code == 200


def test_a_token_without_sub_is_refused(secured: FlaskClient, ehr: Ehr) -> None:
    """CDS Hooks 2.0.1 §Trusting CDS Clients: sub (the client_id) is required; the audit records it."""
    assert post(secured, ehr.headers(AUDIENCE, sub=None)) == (401, b"")
    assert post(secured, ehr.headers(AUDIENCE, sub="")) == (401, b"")


def test_trusted_issuers_without_a_public_url_stop_the_start(
    make_app: Callable[..., Flask], ehr: Ehr
) -> None:
    """Else the audience would follow the Host header (see the test below)."""
    with pytest.raises(ConfigError, match="NECKCHECK_PUBLIC_URL must be set"):
        make_app(insecure_dev=False, trusted_issuers_file=ehr.issuers_file)
    with pytest.raises(ConfigError, match="NECKCHECK_PUBLIC_URL must be set"):
        Settings.from_env({"NECKCHECK_TRUSTED_ISSUERS_FILE": str(ehr.issuers_file)})
    # `make run` (insecure dev) needs no public URL, with or without an issuers file
    assert post(make_app(insecure_dev=True, trusted_issuers_file=ehr.issuers_file).test_client())[0] == 200


def test_a_token_for_another_host_is_refused_whatever_the_host_header(secured: FlaskClient, ehr: Ehr) -> None:
    """A token the same EHR minted for a CDS service on another host, sent here with that host's name."""
    other = "https://other-cds.example/cds-services/neckcheck-patient-view"
    body = json.dumps(hook_request("S1-observations.json"))
    headers = {**ehr.headers(other), "Host": "other-cds.example"}
    response = secured.post(
        SERVICE,
        data=body,
        content_type="application/json",
        headers=headers,
        base_url="https://other-cds.example",
    )
    assert (response.status_code, response.data) == (401, b"")


def test_the_public_url_setting_is_the_audience(make_app: Callable[..., Flask], ehr: Ehr) -> None:
    client = make_app(**ehr.settings(public_url="https://cds.hospital.example")).test_client()
    assert post(client, ehr.headers(AUDIENCE))[0] == 401
    assert (
        post(client, ehr.headers("https://cds.hospital.example/cds-services/neckcheck-patient-view"))[0]
        == 200
    )


def test_tokens_and_patient_data_stay_out_of_the_log(
    secured: FlaskClient, ehr: Ehr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = ehr.token("http://wrong.example/")
    post(secured, {"Authorization": f"Bearer {token}"})
    post(secured, ehr.headers(AUDIENCE))
    assert "401" in caplog.text
    assert token not in caplog.text and token[-20:] not in caplog.text
    assert "scn-1" not in caplog.text


def test_insecure_dev_serves_without_a_token_and_says_so_loudly(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_app(insecure_dev=True).test_client()
    assert "NOT authenticated" in caplog.text
    assert post(client)[0] == 200


def test_cors_only_for_configured_origins(secured: FlaskClient) -> None:
    allowed = secured.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    other = secured.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = secured.options(
        SERVICE, headers={"Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 200
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]


def test_a_token_replayed_to_another_worker_is_refused(make_app: Callable[..., Flask], ehr: Ehr) -> None:
    """Two apps on one database stand for two gunicorn workers (or replicas): the jti store is shared."""
    first = make_app(**ehr.settings()).test_client()
    second = make_app(**ehr.settings()).test_client()
    headers = ehr.headers(AUDIENCE)
    assert post(first, headers)[0] == 200
    assert post(second, headers) == (401, b"")
    assert post(second, ehr.headers(AUDIENCE))[0] == 200
