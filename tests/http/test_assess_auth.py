"""$assess needs a bearer JWT from a trusted issuer by default (the same verifier as CDS Hooks)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support import facts_bundle
from tests.tokens import Ehr, make_ehr

AUDIENCE = "http://localhost/fhir"
BODY = json.dumps(facts_bundle(weakness=True))


@pytest.fixture()
def ehr(tmp_path: Path) -> Ehr:
    return make_ehr(tmp_path)


def post(client: FlaskClient, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    response = client.post(
        "/fhir/$assess", data=BODY, content_type="application/fhir+json", headers=headers or {}
    )
    return response.status_code, response.data


def test_default_settings_refuse_a_request_without_a_token(make_app: Callable[..., Flask]) -> None:
    assert post(make_app(insecure_dev=False).test_client()) == (401, b"")


def test_insecure_dev_serves_it(make_app: Callable[..., Flask]) -> None:
    assert post(make_app(insecure_dev=True).test_client())[0] == 200


def test_a_valid_token_with_the_fhir_audience_is_served(make_app: Callable[..., Flask], ehr: Ehr) -> None:
    client = make_app(**ehr.settings()).test_client()
    assert post(client, ehr.headers(AUDIENCE))[0] == 200
    assert post(client, ehr.headers("http://localhost/cds-services/neckcheck-patient-view")) == (401, b"")


def test_configured_audience_and_required_scopes(make_app: Callable[..., Flask], ehr: Ehr) -> None:
    client = make_app(
        **ehr.settings(),
        fhir_audience="https://neckcheck.hospital.example/fhir",
        required_scopes="system/RiskAssessment.write",
    ).test_client()
    audience = "https://neckcheck.hospital.example/fhir"
    assert post(client, ehr.headers(audience)) == (401, b"")
    assert post(client, ehr.headers(audience, scope="system/RiskAssessment.write openid"))[0] == 200


def test_published_artefacts_stay_public(make_app: Callable[..., Flask]) -> None:
    client = make_app(insecure_dev=False).test_client()
    for path in ("/fhir/metadata", "/fhir/Questionnaire/neckcheck-screen", "/healthz", "/cds-services"):
        assert client.get(path).status_code == 200
