"""The clinician app's tokens, checked against the simulated EHR's authorization server (tests/smart_ehr.py).

neckcheck runs as in production (no insecure dev, a trusted-issuers file); the EHR issues real access
tokens and answers RFC 7662 introspection for them; its FHIR API (a proxy that checks tokens itself) sits in
front of a FHIR server the test controls (pytest-httpserver), so a test sees whether anything was read.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from werkzeug.test import TestResponse

from service.errors import ConfigError
from service.storage.audit import since
from tests.app_ui.charts import serve_patient
from tests.cds.support import searchset
from tests.smart_ehr import CLINICIAN, SmartEhr
from tests.tokens import ISS, LOCAL, make_ehr

API = "/app/api/assess"
SCOPE = "launch openid fhirUser patient/Observation.rs patient/QuestionnaireResponse.cruds"
SUBJECT = f"{ISS}|{CLINICIAN}"  # who the audit names: the trusted issuer and the introspection's sub
REFUSED = (401, "Bearer", b"")  # status, WWW-Authenticate, body: the one answer to every refused token


@pytest.fixture()
def ehr(httpserver: HTTPServer) -> Iterator[SmartEhr]:
    with SmartEhr(httpserver.url_for("/fhir"), "neckcheck", f"{LOCAL}/app/", LOCAL) as started:
        yield started


@dataclass
class Service:
    """neckcheck trusting the simulated EHR, and what it wrote to its audit trail."""

    app: Flask

    def turn(self, token: str | None, patient: str, server: str, **body: Any) -> TestResponse:
        client: FlaskClient = self.app.test_client()
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return client.post(API, json={"fhirServer": server, "patient": patient, **body}, headers=headers)

    def audit(self) -> list[dict[str, Any]]:
        assert self.app.extensions["neckcheck.writer"].flush()
        return list(since(self.app.extensions["neckcheck.database"], dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))


@pytest.fixture()
def trusting(make_app: Callable[..., Flask], tmp_path: Path, ehr: SmartEhr) -> Callable[..., Service]:
    """neckcheck whose trusted issuer lists the EHR's FHIR base with its introspection endpoint."""

    def build(
        auth_method: str = "client_secret_basic",
        introspected: bool = True,
        checks_tokens: bool = False,
        secret: str | None = None,
        **settings: Any,
    ) -> Service:
        introspection = ehr.introspection(tmp_path, auth_method) if introspected else None
        if secret is not None:
            (tmp_path / "introspection.secret").write_text(secret)
        servers = (ehr.iss,)
        issuers = make_ehr(tmp_path, servers, introspection, checks_tokens=servers if checks_tokens else ())
        return Service(make_app(**issuers.settings(**settings)))

    return build


def answer_of(response: TestResponse) -> tuple[int, str | None, bytes]:
    return response.status_code, response.headers.get("WWW-Authenticate"), response.data


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_an_active_token_for_the_patient_reads_the_chart_and_the_audit_names_its_subject(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer, auth_method: str
) -> None:
    service = trusting(auth_method)
    patient = serve_patient(httpserver, "S7-observations.json")
    answer = service.turn(ehr.issue_token(patient, SCOPE), patient, ehr.iss)
    assert answer.status_code == 200, answer.data
    assert answer.get_json()["risk"] == "high"
    assert ehr.introspections() == 1
    (record,) = service.audit()
    assert (record["channel"], record["caller"], record["risk"]) == ("app", SUBJECT, "high")


def expired(ehr: SmartEhr, patient: str) -> str:
    return ehr.issue_token(patient, SCOPE, lifetime=0)


def revoked(ehr: SmartEhr, patient: str) -> str:
    token = ehr.issue_token(patient, SCOPE)
    ehr.revoke_tokens()
    return token


REFUSALS: dict[str, Callable[[SmartEhr, str], str | None]] = {
    "no token": lambda ehr, patient: None,
    "unknown": lambda ehr, patient: "a-token-this-ehr-never-issued",
    "expired": expired,
    "revoked": revoked,
    "another patient": lambda ehr, patient: ehr.issue_token("someone-else", SCOPE),
    "no QuestionnaireResponse scope": lambda ehr, patient: ehr.issue_token(
        patient, "launch openid patient/Observation.rs"
    ),
    "read without search (v2)": lambda ehr, patient: ehr.issue_token(
        patient, "launch openid patient/Observation.r patient/QuestionnaireResponse.r"
    ),
    "narrowed by a query (v2)": lambda ehr, patient: ehr.issue_token(
        patient, "openid patient/Observation.rs?category=vital-signs patient/QuestionnaireResponse.rs"
    ),
    "write only (v1)": lambda ehr, patient: ehr.issue_token(
        patient, "openid patient/Observation.write patient/QuestionnaireResponse.write"
    ),
    "no subject (no openid)": lambda ehr, patient: ehr.issue_token(
        patient, "launch patient/Observation.rs patient/QuestionnaireResponse.rs"
    ),
}


def test_every_refused_token_gets_the_same_answer_and_nothing_is_read(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer
) -> None:
    service = trusting()
    patient = serve_patient(httpserver, "S7-observations.json")
    answers = {
        why: answer_of(service.turn(token(ehr, patient), patient, ehr.iss)) for why, token in REFUSALS.items()
    }
    assert answers == dict.fromkeys(REFUSALS, REFUSED)
    assert httpserver.log == []  # refused before anything was read
    assert service.audit() == []  # and nobody was recorded as having read it


@pytest.mark.parametrize(
    "scope",
    [
        "launch openid patient/Observation.read patient/QuestionnaireResponse.read",  # SMART v1
        "launch openid patient/*.read",
        "launch openid patient/Observation.rs patient/QuestionnaireResponse.s",  # v2: a search needs s
        "launch openid patient/*.cruds",
        "launch openid user/Observation.rs user/QuestionnaireResponse.rs",  # the user's access includes it
    ],
)
def test_scopes_that_allow_the_searches_in_either_syntax(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer, scope: str
) -> None:
    patient = serve_patient(httpserver, "S7-observations.json")
    assert trusting().turn(ehr.issue_token(patient, scope), patient, ehr.iss).status_code == 200


def test_an_introspection_answer_is_cached_within_its_window(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer
) -> None:
    service = trusting(app_token_cache_seconds=300)
    patient = serve_patient(httpserver, "S7-observations.json")
    token = ehr.issue_token(patient, SCOPE)
    assert [service.turn(token, patient, ehr.iss).status_code for _ in range(3)] == [200, 200, 200]
    assert ehr.introspections() == 1
    # the cache answers only for what it was asked: another patient is refused without asking again
    assert answer_of(service.turn(token, "someone-else", ehr.iss)) == REFUSED
    assert ehr.introspections() == 1
    ehr.revoke_tokens()  # within the window a revoked token passes our check (the revocation delay
    # accepted); this EHR's FHIR API checks tokens too and refuses it, which the caller sees as a 401
    assert answer_of(service.turn(token, patient, ehr.iss)) == REFUSED
    assert ehr.introspections() == 1


def test_without_a_cache_a_revoked_token_is_refused_at_once(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer
) -> None:
    service = trusting(app_token_cache_seconds=0)
    patient = serve_patient(httpserver, "S7-observations.json")
    token = ehr.issue_token(patient, SCOPE)
    assert service.turn(token, patient, ehr.iss).status_code == 200
    ehr.revoke_tokens()
    assert answer_of(service.turn(token, patient, ehr.iss)) == REFUSED
    assert ehr.introspections() == 2


def test_the_cache_never_outlives_the_token(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer
) -> None:
    service = trusting(app_token_cache_seconds=300)
    patient = serve_patient(httpserver, "S7-observations.json")
    token = ehr.issue_token(patient, SCOPE, lifetime=2)
    assert service.turn(token, patient, ehr.iss).status_code == 200
    time.sleep(2.1)  # past the token's exp (the EHR says int(issued + 2), no later)
    assert answer_of(service.turn(token, patient, ehr.iss)) == REFUSED
    assert ehr.introspections() == 2  # the cached answer went at exp, and the EHR was asked again


def test_a_wrong_client_secret_refuses_every_token_alike(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer
) -> None:
    """The EHR refuses neckcheck itself (401 invalid_client): no token can be verified, so none passes."""
    service = trusting(secret="not-the-secret")
    patient = serve_patient(httpserver, "S7-observations.json")
    assert answer_of(service.turn(ehr.issue_token(patient, SCOPE), patient, ehr.iss)) == REFUSED
    assert httpserver.log == []


def test_a_server_without_introspection_is_not_the_apps_unless_it_checks_tokens_itself(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer
) -> None:
    service = trusting(introspected=False)
    patient = serve_patient(httpserver, "S7-observations.json")
    answer = service.turn(ehr.issue_token(patient, SCOPE), patient, ehr.iss)
    assert answer.status_code == 412
    assert answer.get_json()["issue"][0]["expression"] == ["fhirServer"]
    assert "introspection" in answer.get_json()["issue"][0]["diagnostics"]
    assert httpserver.log == [] and ehr.introspections() == 0
    assert "connect-src 'self';" in service.app.test_client().get("/app/").headers["Content-Security-Policy"]


def test_a_server_that_checks_tokens_itself_gets_the_token_and_its_refusal_is_the_same_401(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer
) -> None:
    """The EHR's FHIR API refuses a token it did not issue (401); the app's caller gets the bare 401 every
    other refusal gets, not a 412 that would tell a refused token from a good one."""
    service = trusting(introspected=False, checks_tokens=True)
    patient = serve_patient(httpserver, "S7-observations.json")
    good = service.turn(ehr.issue_token(patient, SCOPE), patient, ehr.iss)
    assert good.status_code == 200 and good.get_json()["risk"] == "high"
    assert answer_of(service.turn("a-token-this-ehr-never-issued", patient, ehr.iss)) == REFUSED
    assert answer_of(service.turn(None, patient, ehr.iss)) == REFUSED
    assert ehr.introspections() == 0
    (record,) = service.audit()  # the read the server allowed; it names no subject nobody verified
    assert record["caller"] == f"{ehr.iss}|subject not verified (the FHIR server checks tokens)"
    assert CLINICIAN not in record["caller"]


def test_a_turn_with_nothing_on_record_is_audited_too(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer
) -> None:
    for path in ("/fhir/Observation", "/fhir/QuestionnaireResponse"):
        httpserver.expect_request(path).respond_with_json(searchset([]))
    service = trusting()
    view = service.turn(ehr.issue_token("p-empty", SCOPE), "p-empty", ehr.iss).get_json()
    assert (view["risk"], view["status"]) == ("unknown", "no data")
    (record,) = service.audit()
    assert (record["channel"], record["caller"], record["status"], record["risk"]) == (
        "app",
        SUBJECT,
        "no-facts",
        "none",
    )
    assert record["input_ids"] == [] and record["output_ids"] == [] and len(record["input_hash"]) == 64


def test_every_turn_that_reads_the_chart_writes_one_record(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer
) -> None:
    service = trusting()
    patient = serve_patient(httpserver, "S5-observations.json")
    token = ehr.issue_token(patient, SCOPE)
    no = dict.fromkeys(["vision-change", "slurred-speech", "weakness"], False)
    statuses = [
        service.turn(token, patient, ehr.iss).status_code,
        service.turn(token, patient, ehr.iss, answers=no).status_code,
        service.turn(token, patient, ehr.iss, answers={**no, "symptoms-worsening": True}).status_code,
        service.turn(token, patient, ehr.iss, answers={"weakness": "maybe"}).status_code,  # refused unread
    ]
    assert statuses == [200, 200, 200, 422]
    records = service.audit()
    assert [(r["status"], r["risk"]) for r in records] == [
        ("preliminary", "low"),
        ("preliminary", "low"),
        ("final", "high"),
    ]
    assert {r["caller"] for r in records} == {SUBJECT}
    assert len([r for r, _ in httpserver.log if r.path == "/fhir/Observation"]) == 3


def test_data_about_another_patient_is_refused_and_its_read_audited(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer
) -> None:
    other = serve_patient(httpserver, "S7-observations.json")  # whatever is asked, the server sends this one
    service = trusting()
    answer = service.turn(ehr.issue_token("p-asked", SCOPE), "p-asked", ehr.iss)
    assert answer.status_code == 422 and other != "p-asked"
    (record,) = service.audit()
    assert (record["caller"], record["status"], record["risk"]) == (SUBJECT, "not-assessed", "none")
    assert record["input_ids"] and all(i.startswith("Observation/") for i in record["input_ids"])


def test_two_issuers_cannot_introspect_for_one_server(
    make_app: Callable[..., Flask], tmp_path: Path, ehr: SmartEhr
) -> None:
    issuers = make_ehr(tmp_path, (ehr.iss,), ehr.introspection(tmp_path))
    document = json.loads(issuers.issuers_file.read_text())
    document["issuers"].append({**document["issuers"][0], "iss": "https://another-ehr.example.org"})
    issuers.issuers_file.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=r"both list FHIR server .* with an introspection endpoint"):
        make_app(**issuers.settings())


@pytest.mark.parametrize(
    ("scope", "read"),
    [
        (SCOPE, False),  # not allowed: the Patient is shown as not on record, and the turn goes on
        (f"{SCOPE} patient/Patient.r", True),  # v2
        (f"{SCOPE} patient/Patient.read", True),  # v1
        (f"{SCOPE} patient/Patient.s", False),  # a search scope is not a read
    ],
)
def test_the_patient_is_read_only_when_the_tokens_scopes_allow_it(
    trusting: Callable[..., Service], ehr: SmartEhr, httpserver: HTTPServer, scope: str, read: bool
) -> None:
    """The name, sex and age are context, not needed data: a token without a Patient scope is not refused,
    and the service does not read what the token was not granted (the EHR's proxy here would let it)."""
    service = trusting()
    patient = serve_patient(httpserver, "S7-observations.json")
    answer = service.turn(ehr.issue_token(patient, scope), patient, ehr.iss)
    assert answer.status_code == 200, answer.data
    paths = {request.path for request, _ in httpserver.log}
    assert (f"/fhir/Patient/{patient}" in paths) is read
    view = answer.get_json()
    assert (view["risk"], view["demographics"]["name"]) == ("high", "Sam Sample" if read else None)
