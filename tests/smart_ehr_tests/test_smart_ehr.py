"""The simulated EHR of tests/smart_ehr.py, driven as a SMART app would drive it, with ``requests``:
discovery, the authorization request with PKCE, the code exchange, and the FHIR API behind the token.

The FHIR server behind the EHR is a real one on 127.0.0.1: neckcheck itself under gunicorn
(tests/live.py), whose ``/fhir`` serves metadata, the Questionnaire and ``$assess``; pytest-httpserver
stands in where a test needs to see what reached the server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from pytest_httpserver import HTTPServer

from tests.live import Server, free_port
from tests.smart_ehr import SmartEhr, origin_of
from tests.support import facts_bundle, summary

CLIENT = "neckcheck-app"
APP = "http://127.0.0.1:9"  # the app's origin: only a name here, nothing is served there
REDIRECT = f"{APP}/app/launch/callback"
SCOPE = "launch openid fhirUser patient/Observation.rs patient/QuestionnaireResponse.cruds"
FHIR_JSON = "application/fhir+json"


@pytest.fixture()
def ehr(upstream: Server) -> Iterator[SmartEhr]:
    with SmartEhr(f"{upstream.url}/fhir", client_id=CLIENT, redirect_uri=REDIRECT, app_origin=APP) as started:
        yield started


class App:
    """One EHR launch as the app performs it (SMART App Launch 2.x, §"EHR Launch"), step by step so
    a test can change any parameter of any step."""

    def __init__(self, ehr: SmartEhr, patient: str = "p1") -> None:
        self.ehr = ehr
        self.launch = ehr.launch_token(patient)
        self.verifier = secrets.token_urlsafe(48)  # RFC 7636 §4.1: 43 to 128 characters
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        self.challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        self.state = secrets.token_urlsafe(12)
        self.configuration: dict[str, Any] = requests.get(
            f"{ehr.iss}/.well-known/smart-configuration", timeout=10
        ).json()

    def authorize(self, **change: str | None) -> requests.Response:
        params = {
            "response_type": "code",
            "client_id": CLIENT,
            "redirect_uri": REDIRECT,
            "launch": self.launch,
            "scope": SCOPE,
            "state": self.state,
            "aud": self.ehr.iss,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        sent = {k: v for k, v in {**params, **change}.items() if v is not None}
        return requests.get(
            self.configuration["authorization_endpoint"], params=sent, allow_redirects=False, timeout=10
        )

    def code(self) -> str:
        answer = self.authorize()
        assert answer.status_code == 302, answer.text
        return redirected(answer)["code"]

    def exchange(self, code: str, **change: str | None) -> requests.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT,
            "code_verifier": self.verifier,
        }
        sent = {k: v for k, v in {**form, **change}.items() if v is not None}
        return requests.post(
            self.configuration["token_endpoint"], data=sent, headers={"Origin": APP}, timeout=10
        )

    def token(self) -> str:
        answer = self.exchange(self.code())
        assert answer.status_code == 200, answer.text
        access: str = answer.json()["access_token"]
        return access


def redirected(answer: requests.Response) -> dict[str, str]:
    """The query parameters of a redirect back to the app (RFC 6749 §4.1.2), checked to go there."""
    location = answer.headers["Location"]
    assert location.startswith(f"{REDIRECT}?"), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def test_discovery_names_the_endpoints_and_smart_capabilities(ehr: SmartEhr) -> None:
    answer = requests.get(f"{ehr.iss}/.well-known/smart-configuration", headers={"Origin": APP}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == APP  # the app reads it from the browser
    found = answer.json()
    assert found["authorization_endpoint"] == f"{ehr.url}/authorize"
    assert found["token_endpoint"] == f"{ehr.url}/token"
    assert found["code_challenge_methods_supported"] == ["S256"]
    assert found["grant_types_supported"] == ["authorization_code"]
    assert found["token_endpoint_auth_methods_supported"] == ["none"]
    assert {"launch-ehr", "client-public", "context-ehr-patient", "permission-v2"} <= set(
        found["capabilities"]
    )
    assert {"launch", "openid", "fhirUser", "patient/Observation.rs"} <= set(found["scopes_supported"])
    assert found["issuer"] == ehr.iss
    assert requests.get(found["jwks_uri"], timeout=10).json()["keys"][0]["kty"] == "RSA"


def test_a_full_ehr_launch_gets_a_token_with_the_patient_and_reads_fhir_with_it(
    ehr: SmartEhr, upstream: Server
) -> None:
    app = App(ehr, patient="p1")
    answer = app.authorize()
    assert answer.status_code == 302  # approved at once: no login page, the clinician launched the app
    back = redirected(answer)
    assert back["state"] == app.state
    granted = app.exchange(back["code"])
    assert granted.status_code == 200, granted.text
    assert granted.headers["Access-Control-Allow-Origin"] == APP
    assert granted.headers["Cache-Control"] == "no-store"  # RFC 6749 §5.1
    token = granted.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["scope"].split() == SCOPE.split()
    assert token["patient"] == "p1"  # the launch context of SMART 2.x §"Launch context arrives with token"
    assert ehr.issued_tokens() == 1

    keys = KeySet.import_key_set(requests.get(app.configuration["jwks_uri"], timeout=10).json())
    identity = jwt.decode(token["id_token"], keys).claims
    assert identity["iss"] == ehr.iss
    assert identity["aud"] == [CLIENT]
    assert identity["fhirUser"] == f"{ehr.iss}/Practitioner/ehr-clinician"

    direct = requests.get(f"{upstream.url}/fhir/Questionnaire/neckcheck-screen", timeout=10)
    proxied = requests.get(
        f"{ehr.iss}/Questionnaire/neckcheck-screen", headers=bearer(token["access_token"]), timeout=10
    )
    assert proxied.status_code == 200
    assert proxied.headers["Content-Type"] == direct.headers["Content-Type"]
    assert proxied.json() == direct.json()

    bundle = json.dumps(facts_bundle(facial_numbness=True, neck_pain=True, facial_numbness_days=2))
    assessed = requests.post(
        f"{ehr.iss}/$assess",
        data=bundle,
        headers=bearer(token["access_token"], **{"Content-Type": FHIR_JSON}),
        timeout=30,
    )
    assert assessed.status_code == 200, assessed.text
    reference = requests.post(
        f"{upstream.url}/fhir/$assess", data=bundle, headers={"Content-Type": FHIR_JSON}, timeout=30
    )
    assert summary(assessed.json()) == summary(reference.json())


def test_a_code_is_good_for_one_exchange_only(ehr: SmartEhr) -> None:
    app = App(ehr)
    code = app.code()
    assert app.exchange(code).status_code == 200
    again = app.exchange(code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_verifier": None}, "invalid_request"),  # PKCE: a public client proves it with the verifier
        ({"code_verifier": secrets.token_urlsafe(48)}, "invalid_grant"),  # someone else's verifier
        ({"redirect_uri": f"{APP}/elsewhere"}, "invalid_grant"),  # RFC 6749 §4.1.3: same as authorized
        ({"client_id": "another-app"}, "invalid_client"),
        ({"code": "not-a-code-this-ehr-issued"}, "invalid_grant"),
    ],
)
def test_the_token_endpoint_refuses(ehr: SmartEhr, change: dict[str, str | None], error: str) -> None:
    app = App(ehr)
    code = app.code()
    refused = app.exchange(change.pop("code", code), **change)
    assert refused.status_code in (400, 401)
    assert refused.json()["error"] == error
    assert "access_token" not in refused.json()
    assert ehr.issued_tokens() == 0


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"launch": "a-launch-this-ehr-never-started"}, "invalid_request"),
        ({"launch": None}, "invalid_request"),
        ({"aud": "http://127.0.0.1:1/fhir"}, "invalid_request"),  # SMART: SHALL reject a wrong aud
        ({"aud": None}, "invalid_request"),
        ({"scope": "openid fhirUser patient/Observation.rs"}, "invalid_scope"),  # no 'launch'
        ({"scope": "launch patient/Everything.crud"}, "invalid_scope"),  # not a scope this EHR grants
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),  # PKCE required
        ({"code_challenge_method": "plain"}, "invalid_request"),  # SMART 2.x: S256 only
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_the_authorization_endpoint_refuses_back_to_the_app(
    ehr: SmartEhr, change: dict[str, str | None], error: str
) -> None:
    app = App(ehr)
    refused = app.authorize(**change)
    assert refused.status_code == 302
    back = redirected(refused)  # RFC 6749 §4.1.2.1: errors go to a redirect URI the client registered
    assert back["error"] == error
    assert back["state"] == app.state
    assert "code" not in back


@pytest.mark.parametrize(
    "change",
    [{"redirect_uri": f"{APP}/not-registered"}, {"client_id": "another-app"}, {"client_id": None}],
)
def test_the_authorization_endpoint_never_redirects_to_an_unregistered_uri(
    ehr: SmartEhr, change: dict[str, str | None]
) -> None:
    refused = App(ehr).authorize(**change)
    assert refused.status_code == 400  # RFC 6749 §4.1.2.1: told here, never sent to an unknown URI
    assert "Location" not in refused.headers
    assert refused.json()["error"] in ("invalid_request", "invalid_client")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token-this-ehr-issued"}, {"Authorization": "Basic YTpi"}],
)
def test_the_fhir_api_needs_a_token_this_ehr_issued(ehr: SmartEhr, headers: dict[str, str]) -> None:
    refused = requests.get(
        f"{ehr.iss}/Questionnaire/neckcheck-screen", headers={"Origin": APP, **headers}, timeout=10
    )
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].lower().startswith("bearer")  # RFC 6750 §3
    assert refused.headers["Access-Control-Allow-Origin"] == APP  # the app can read why
    assert "resourceType" not in refused.json()  # nothing of the FHIR server leaked


def test_the_capability_statement_is_open(ehr: SmartEhr) -> None:
    answer = requests.get(f"{ehr.iss}/metadata", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["resourceType"] == "CapabilityStatement"


def test_fhir_errors_pass_through_unchanged(ehr: SmartEhr) -> None:
    token = App(ehr).token()
    missing = requests.get(
        f"{ehr.iss}/Questionnaire/no-such-questionnaire", headers=bearer(token), timeout=10
    )
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"


def test_an_unreachable_fhir_server_is_a_bad_gateway() -> None:
    with SmartEhr(f"http://127.0.0.1:{free_port()}/fhir", CLIENT, REDIRECT, APP) as ehr:
        answer = requests.get(f"{ehr.iss}/Patient/p1", headers=bearer(App(ehr).token()), timeout=10)
    assert answer.status_code == 502
    assert answer.headers["Content-Type"] == FHIR_JSON
    assert answer.json()["issue"][0]["code"] == "transient"


@pytest.mark.parametrize("path", ["/token", "/fhir/Observation", "/fhir"])
def test_preflight_lets_the_app_send_a_token_and_fhir_json(ehr: SmartEhr, path: str) -> None:
    asked = {
        "Origin": APP,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    answer = requests.options(f"{ehr.url}{path}", headers=asked, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert "Location" in answer.headers["Access-Control-Expose-Headers"]  # a created resource's address


def test_no_cors_for_another_origin(ehr: SmartEhr) -> None:
    token = App(ehr).token()
    answer = requests.get(
        f"{ehr.iss}/Questionnaire/neckcheck-screen",
        headers=bearer(token, Origin="http://127.0.0.1:10"),
        timeout=10,
    )
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "Origin" in answer.headers["Vary"]


def test_the_proxy_passes_the_request_on_without_the_ehr_token(httpserver: HTTPServer) -> None:
    """What the FHIR server receives and what the app gets back, seen at a server the test controls."""
    base = httpserver.url_for("/r4").rstrip("/")
    created = {"resourceType": "Bundle", "type": "transaction-response", "link": [{"url": f"{base}/x"}]}
    httpserver.expect_oneshot_request("/r4", method="POST", query_string="_format=json").respond_with_data(
        json.dumps(created),
        status=200,
        headers={"Location": f"{base}/Bundle/1", "ETag": 'W/"1"'},
        content_type=FHIR_JSON,
    )
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    with SmartEhr(base, client_id=CLIENT, redirect_uri=REDIRECT, app_origin=APP) as ehr:
        token = App(ehr).token()
        answer = requests.post(
            f"{ehr.iss}?_format=json",
            data=json.dumps(transaction),
            headers=bearer(token, **{"Content-Type": FHIR_JSON, "Prefer": "return=representation"}),
            timeout=10,
        )
    httpserver.check_assertions()
    (received, _) = httpserver.log[0]
    assert received.get_json() == transaction
    assert received.headers["Content-Type"] == FHIR_JSON
    assert received.headers["Prefer"] == "return=representation"
    assert "Authorization" not in received.headers  # the EHR's token stays with the EHR
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == FHIR_JSON
    assert answer.headers["ETag"] == 'W/"1"'
    assert answer.headers["Location"] == f"{ehr.iss}/Bundle/1"  # links point back through the EHR
    assert answer.json()["link"][0]["url"] == f"{ehr.iss}/x"


def introspect(ehr: SmartEhr, token: str, auth: tuple[str, str] | None = None) -> requests.Response:
    """RFC 7662 §2.1 as a protected resource asks: a form POST, authenticated as the resource server."""
    credentials = auth or (ehr.resource_server.client_id, ehr.resource_server.client_secret)
    return requests.post(f"{ehr.url}/introspect", data={"token": token}, auth=credentials, timeout=10)


def test_introspection_describes_a_launched_token_as_smart_says(ehr: SmartEhr) -> None:
    app = App(ehr, patient="p1")
    token = app.token()
    assert app.configuration["introspection_endpoint"] == f"{ehr.url}/introspect"
    answer = introspect(ehr, token)
    assert answer.status_code == 200
    found = answer.json()
    assert found["active"] is True
    assert (found["patient"], found["scope"], found["client_id"]) == ("p1", SCOPE, CLIENT)
    assert found["sub"] == "Practitioner/ehr-clinician"  # openid granted: who the user is
    assert found["fhirUser"] == f"{ehr.iss}/Practitioner/ehr-clinician"
    assert found["iat"] <= found["exp"] <= found["iat"] + 3600
    assert ehr.introspections() == 1


@pytest.mark.parametrize("state", ["unknown", "revoked", "expired"])
def test_introspection_says_inactive_and_nothing_more(ehr: SmartEhr, state: str) -> None:
    token = {
        "unknown": lambda: "a-token-this-ehr-never-issued",
        "revoked": lambda: App(ehr).token(),
        "expired": lambda: ehr.issue_token("p1", SCOPE, lifetime=0),
    }[state]()
    if state == "revoked":
        ehr.revoke_tokens()
    answer = introspect(ehr, token)
    assert (answer.status_code, answer.json()) == (200, {"active": False})  # RFC 7662 §2.2


@pytest.mark.parametrize(
    "auth",
    [("neckcheck-introspection", "wrong-secret"), (CLIENT, ""), ("someone", "x")],
    ids=["wrong secret", "the public app", "unknown client"],
)
def test_introspection_answers_only_the_resource_server(ehr: SmartEhr, auth: tuple[str, str]) -> None:
    refused = introspect(ehr, App(ehr).token(), auth)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert "active" not in refused.json()


def test_introspection_takes_the_credentials_in_the_form_too(ehr: SmartEhr) -> None:
    form = {
        "token": App(ehr).token(),
        "client_id": ehr.resource_server.client_id,
        "client_secret": ehr.resource_server.client_secret,
    }
    answer = requests.post(f"{ehr.url}/introspect", data=form, timeout=10)
    assert answer.status_code == 200 and answer.json()["active"] is True


def test_origin_of_a_url() -> None:
    assert origin_of("http://127.0.0.1:8080/app/launch?iss=x") == "http://127.0.0.1:8080"
