"""The pieces of the clinician app's token check, each on its own: SMART scope syntax, the RFC 7662 client and
its cache (against an authorization server the test scripts, with a clock the test moves), and the
introspection entries of the trusted-issuers file."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service.errors import ConfigError, Unauthorized
from service.fhir_base import FhirBase
from service.security.introspection import IntrospectionEndpoint, Introspector
from service.security.issuers import load_trusted_issuers
from service.security.smart_scopes import allows_search, missing_searches
from tests.tokens import make_ehr

NOW = 1_800_000_000.0
READS = ("Observation", "QuestionnaireResponse")


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        ("patient/Observation.read", True),  # v1
        ("patient/Observation.*", True),
        ("patient/*.read", True),
        ("user/Observation.read", True),
        ("patient/Observation.rs", True),  # v2
        ("patient/Observation.s", True),
        ("patient/Observation.cruds", True),
        ("patient/*.rs", True),
        ("patient/Observation.r", False),  # v2: read, no search
        ("patient/Observation.write", False),
        ("patient/Observation.cud", False),
        ("patient/Observation.sr", False),  # the letters out of order: not a v2 scope
        ("patient/Observation.rss", False),
        ("patient/Observation.rs?category=vital-signs", False),  # narrowed: not the app's searches
        ("system/Observation.rs", False),  # a backend service's, never a browser's
        ("patient/Condition.rs", False),
        ("patient/observation.rs", False),
        ("launch", False),
        ("Observation.read", False),
    ],
)
def test_which_scopes_allow_searching_observations(scope: str, allowed: bool) -> None:
    assert allows_search([scope], "Observation") is allowed


def test_missing_searches_names_each_type_not_allowed() -> None:
    assert missing_searches("launch patient/Observation.rs", READS) == ["QuestionnaireResponse"]
    assert missing_searches("patient/*.read", READS) == []
    assert missing_searches("", READS) == list(READS)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


def endpoint(
    httpserver: HTTPServer, method: str = "client_secret_basic", secret: str = "s3cret"
) -> IntrospectionEndpoint:
    return IntrospectionEndpoint(httpserver.url_for("/introspect"), "neckcheck", secret, method)


def answering(httpserver: HTTPServer, claims: dict[str, Any] | str, status: int = 200) -> None:
    body = claims if isinstance(claims, str) else json.dumps(claims)
    httpserver.expect_request("/introspect", method="POST").respond_with_data(
        body, status=status, content_type="application/json"
    )


def asked(httpserver: HTTPServer) -> int:
    return sum(1 for request, _ in httpserver.log if request.path == "/introspect")


def test_an_active_answer_is_taken_and_the_request_is_rfc_7662(httpserver: HTTPServer, clock: Clock) -> None:
    answering(httpserver, {"active": True, "sub": "u1", "exp": NOW + 60})
    introspector = Introspector(requests.Session(), clock=clock)
    secret = "a:b%c d"  # RFC 6749 §2.3.1: form-encoded before base64, or ':' would split it
    claims = introspector.active_claims(endpoint(httpserver, secret=secret), "tok-1")
    assert claims["sub"] == "u1"
    (request, _) = httpserver.log[0]
    assert request.form.to_dict() == {"token": "tok-1", "token_type_hint": "access_token"}
    user, _, password = base64.b64decode(request.headers["Authorization"][6:]).decode().partition(":")
    assert (unquote_plus(user), unquote_plus(password)) == ("neckcheck", secret)


def test_client_secret_post_sends_the_credentials_in_the_form(httpserver: HTTPServer, clock: Clock) -> None:
    answering(httpserver, {"active": True})
    Introspector(requests.Session(), clock=clock).active_claims(
        endpoint(httpserver, "client_secret_post"), "t"
    )
    (request, _) = httpserver.log[0]
    assert request.form["client_id"] == "neckcheck" and request.form["client_secret"] == "s3cret"
    assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"active": False}, 200),
        ({"active": "true"}, 200),  # RFC 7662 §2.2: a boolean
        ({"active": 1}, 200),
        ({}, 200),
        ({"active": True, "exp": NOW}, 200),  # active by the server's word, expired by ours
        ({"active": True, "exp": "soon"}, 200),
        ({"active": True, "nbf": NOW + 60}, 200),
        ('"active"', 200),
        ("<html>", 200),
        ({"active": True}, 401),  # the server refuses neckcheck's credentials
        ({"active": True}, 500),
    ],
)
def test_anything_but_an_active_unexpired_answer_is_refused(
    httpserver: HTTPServer, clock: Clock, claims: dict[str, Any] | str, status: int
) -> None:
    answering(httpserver, claims, status)
    with pytest.raises(Unauthorized):
        Introspector(requests.Session(), clock=clock).active_claims(endpoint(httpserver), "tok")


def test_an_unreachable_endpoint_is_a_refusal(clock: Clock) -> None:
    unreachable = IntrospectionEndpoint("http://127.0.0.1:9/introspect", "neckcheck", "s")
    with pytest.raises(Unauthorized, match="unavailable"):
        Introspector(requests.Session(), clock=clock).active_claims(unreachable, "tok")


def test_a_redirect_is_not_followed(httpserver: HTTPServer, clock: Clock) -> None:
    httpserver.expect_request("/introspect").respond_with_data(
        "", status=307, headers={"Location": "/elsewhere"}
    )
    with pytest.raises(Unauthorized, match="HTTP 307"):
        Introspector(requests.Session(), clock=clock).active_claims(endpoint(httpserver), "tok")
    assert [r.path for r, _ in httpserver.log] == ["/introspect"]


def test_the_cache_keeps_an_answer_for_its_window_then_asks_again(
    httpserver: HTTPServer, clock: Clock
) -> None:
    answering(httpserver, {"active": True, "exp": NOW + 3600})
    introspector = Introspector(requests.Session(), cache_seconds=30, clock=clock)
    for _ in range(3):
        introspector.active_claims(endpoint(httpserver), "tok")
    assert asked(httpserver) == 1
    clock.now += 30
    introspector.active_claims(endpoint(httpserver), "tok")
    assert asked(httpserver) == 2


def test_the_cache_never_keeps_an_answer_past_the_tokens_exp(httpserver: HTTPServer, clock: Clock) -> None:
    answers = iter([{"active": True, "exp": NOW + 5}, {"active": False}])
    httpserver.expect_request("/introspect").respond_with_handler(
        lambda request: Response(json.dumps(next(answers)), content_type="application/json")
    )
    introspector = Introspector(requests.Session(), cache_seconds=300, clock=clock)
    introspector.active_claims(endpoint(httpserver), "tok")
    clock.now += 4.9
    introspector.active_claims(endpoint(httpserver), "tok")
    assert asked(httpserver) == 1
    clock.now += 0.1  # exp reached: the cached answer is gone, and the server now says inactive
    with pytest.raises(Unauthorized, match="not active"):
        introspector.active_claims(endpoint(httpserver), "tok")
    assert asked(httpserver) == 2


def test_the_cache_is_bounded_and_keeps_no_refusal(httpserver: HTTPServer, clock: Clock) -> None:
    def answer(request: Request) -> Response:
        active = request.form["token"] != "bad"
        return Response(json.dumps({"active": active}), content_type="application/json")

    httpserver.expect_request("/introspect").respond_with_handler(answer)
    introspector = Introspector(requests.Session(), cache_seconds=60, clock=clock, max_entries=2)
    for token in ("a", "b", "c", "a"):  # "a" was the least recently used when "c" came in
        introspector.active_claims(endpoint(httpserver), token)
    assert asked(httpserver) == 4
    for _ in range(2):
        with pytest.raises(Unauthorized):
            introspector.active_claims(endpoint(httpserver), "bad")
    assert asked(httpserver) == 6


def test_no_cache_asks_every_time(httpserver: HTTPServer, clock: Clock) -> None:
    answering(httpserver, {"active": True})
    introspector = Introspector(requests.Session(), cache_seconds=0, clock=clock)
    for _ in range(3):
        introspector.active_claims(endpoint(httpserver), "tok")
    assert asked(httpserver) == 3


def test_the_secret_never_shows_in_a_repr() -> None:
    assert "s3cret" not in repr(
        IntrospectionEndpoint("https://ehr.example/introspect", "neckcheck", "s3cret")
    )


# the trusted-issuers file's introspection entries and listed servers


def issuers_file(folder: Path, entry: dict[str, Any], secret: str | None = "s3cret\n") -> Path:
    if secret is not None:
        (folder / "rs.secret").write_text(secret)
    path = folder / "issuers.json"
    path.write_text(json.dumps({"issuers": [{"iss": "https://ehr.example.org", **entry}]}))
    return path


INTROSPECTION = {
    "endpoint": "https://ehr.example.org/introspect",
    "clientId": "neckcheck",
    "clientSecretFile": "rs.secret",
}


def test_an_issuer_with_introspection_needs_no_keys(tmp_path: Path) -> None:
    entry = {
        "introspection": INTROSPECTION,
        "fhirServers": [
            "https://fhir.example.org/r4",
            {"url": "https://other.example.org/fhir", "checksTokens": True},
        ],
    }
    (issuer,) = load_trusted_issuers(issuers_file(tmp_path, entry)).values()
    assert issuer.introspection == IntrospectionEndpoint(
        "https://ehr.example.org/introspect", "neckcheck", "s3cret", "client_secret_basic"
    )
    assert issuer.fhir_servers == {
        FhirBase("https", "fhir.example.org", 443, "/r4"),
        FhirBase("https", "other.example.org", 443, "/fhir"),
    }
    assert issuer.self_checking == {FhirBase("https", "other.example.org", 443, "/fhir")}
    assert issuer.jwks is None


@pytest.mark.parametrize(
    ("entry", "secret", "message"),
    [
        (
            {"introspection": {**INTROSPECTION, "endpoint": "http://ehr.example.org/introspect"}},
            "s",
            "https://",
        ),
        ({"introspection": {**INTROSPECTION, "endpoint": "introspect"}}, "s", "https://"),
        ({"introspection": {**INTROSPECTION, "authMethod": "private_key_jwt"}}, "s", "client_secret_basic"),
        ({"introspection": {**INTROSPECTION, "clientSecret": "s"}}, "s", "unknown key"),
        (
            {"introspection": {k: v for k, v in INTROSPECTION.items() if k != "clientId"}},
            "s",
            "'clientId' is required",
        ),
        ({"introspection": "https://ehr.example.org/introspect"}, "s", "expected an object"),
        ({"introspection": INTROSPECTION}, None, "clientSecretFile .* cannot be read"),
        ({"introspection": INTROSPECTION}, "\n", "clientSecretFile .* is empty"),
        ({"jwksFile": None, "fhirServers": []}, None, "needs 'jwksFile' or"),
        (
            {"introspection": INTROSPECTION, "fhirServers": [{"url": "https://f.example/r4"}]},
            "s",
            "'checksTokens'",
        ),
        (
            {
                "introspection": INTROSPECTION,
                "fhirServers": [{"url": "https://f.example/r4", "checksTokens": 1}],
            },
            "s",
            "true or false",
        ),
        (
            {
                "introspection": INTROSPECTION,
                "fhirServers": [{"url": "https://f.example/r4", "checksTokens": "yes"}],
            },
            "s",
            "true or false",
        ),
        (
            {"introspection": INTROSPECTION, "fhirServers": [{"url": "f.example", "checksTokens": True}]},
            "s",
            "base URL",
        ),
        (
            {"introspection": INTROSPECTION, "fhirServers": [{"url": "https://f.example", "checks": True}]},
            "s",
            "unknown key",
        ),
        (
            {"introspection": INTROSPECTION, "fhirServers": [["https://f.example"]]},
            "s",
            "base URL or an object",
        ),
    ],
)
def test_a_bad_introspection_entry_stops_the_start(
    tmp_path: Path, entry: dict[str, Any], secret: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_trusted_issuers(issuers_file(tmp_path, entry, secret))


def test_http_is_taken_for_a_loopback_endpoint_only(tmp_path: Path) -> None:
    entry = {"introspection": {**INTROSPECTION, "endpoint": "http://127.0.0.1:8081/introspect"}}
    (issuer,) = load_trusted_issuers(issuers_file(tmp_path, entry)).values()
    assert issuer.introspection is not None and issuer.introspection.url.startswith("http://127.0.0.1")


def test_the_docs_example_loads(tmp_path: Path) -> None:
    """docs/integration/smart-app.md, "The app's tokens": the trusted-issuers file an operator copies."""
    page = (Path(__file__).parents[2] / "docs" / "integration" / "smart-app.md").read_text(encoding="utf-8")
    (example,) = [b for b in page.split("```json\n")[1:] if '"introspection"' in b.split("```")[0]]
    make_ehr(tmp_path)  # writes ehr-jwks.json, which the example names
    (tmp_path / "introspection.secret").write_text("s3cret\n")
    path = tmp_path / "example.json"
    path.write_text(example.split("```")[0])
    (issuer,) = load_trusted_issuers(path).values()
    assert issuer.introspection is not None and issuer.introspection.client_secret == "s3cret"
    assert issuer.self_checking == {FhirBase("https", "fhir-archive.example-hospital.org", 443, "/r4")}
