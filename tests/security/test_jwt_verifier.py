"""The CDS client's bearer JWT: only a fresh, signed, unreplayed token from a trusted EHR gets through."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pytest_httpserver import HTTPServer

from service.errors import ConfigError, Unauthorized
from service.fhir_base import FhirBase
from service.security.issuers import TrustedIssuer, load_trusted_issuers
from service.security.jwt_verifier import JwtVerifier

NOW = 1_750_000_000.0
ISS = "https://fhir-ehr.example.com/"
OTHER_ISS = "https://other-ehr.example.org/"
AUD = "https://cds.example.org/cds-services/neckcheck"
SUB = "ehr-client-id"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Signer:
    """An EHR signing key and its public JWK, as the EHR would publish it."""

    alg: str
    kid: str
    private_key: Any
    jwk: dict[str, Any]

    def token(self, iss: str = ISS, header: dict[str, Any] | None = None, **claims: Any) -> str:
        """A valid token; a claim or header passed as None is left out."""
        payload = {"iss": iss, "sub": SUB, "aud": AUD, "iat": NOW, "exp": NOW + 300, "jti": "jti-1"} | claims
        payload = {name: value for name, value in payload.items() if value is not None}
        headers = {
            name: value for name, value in ({"kid": self.kid} | (header or {})).items() if value is not None
        }
        return jwt.encode(payload, self.private_key, algorithm=self.alg, headers=headers)

    def public_pem(self) -> bytes:
        return bytes(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def _signer(alg: str, kid: str) -> Signer:
    if alg.startswith("ES"):
        key: Any = ec.generate_private_key(ec.SECP384R1())
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return Signer(alg=alg, kid=kid, private_key=key, jwk=jwk | {"kid": kid, "use": "sig", "alg": alg})


@pytest.fixture(scope="module")
def es384() -> Signer:
    return _signer("ES384", "ehr-es384")


@pytest.fixture(scope="module")
def rs384() -> Signer:
    return _signer("RS384", "ehr-rs384")


@pytest.fixture(scope="module")
def impostor() -> Signer:
    """Another key claiming the EHR's kid: its tokens must fail the signature check."""
    return _signer("ES384", "ehr-es384")


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def verifier(es384: Signer, rs384: Signer, clock: Clock) -> JwtVerifier:
    issuers = {
        ISS: TrustedIssuer(
            ISS, jwks={"keys": [es384.jwk, rs384.jwk]}, jku_allowlist=("https://ehr.test/jwks",)
        ),
        OTHER_ISS: TrustedIssuer(OTHER_ISS, jwks={"keys": [es384.jwk]}),
    }
    return JwtVerifier(issuers, clock=clock)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _hand_made(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A token PyJWT would refuse to make (alg none, or HS256 keyed with the public key)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode('ascii')))}"


def _claims() -> dict[str, Any]:
    return {"iss": ISS, "sub": SUB, "aud": AUD, "iat": NOW, "exp": NOW + 300, "jti": "jti-1"}


def _alg_none(signer: Signer) -> str:
    return _hand_made({"alg": "none", "typ": "JWT", "kid": signer.kid}, _claims(), lambda _: b"")


def _hs256_with_public_pem(signer: Signer) -> str:
    pem = signer.public_pem()
    header = {"alg": "HS256", "typ": "JWT", "kid": signer.kid}
    return _hand_made(header, _claims(), lambda data: hmac.new(pem, data, hashlib.sha256).digest())


def _tampered(signer: Signer) -> str:
    head, _, signature = signer.token().split(".")
    return f"{head}.{_b64(json.dumps(_claims() | {'jti': 'other'}).encode())}.{signature}"


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_valid_token_passes(verifier: JwtVerifier, es384: Signer, rs384: Signer, alg: str) -> None:
    signer = es384 if alg == "ES384" else rs384
    claims = verifier.verify(f"Bearer {signer.token(tenant='t-1')}", AUD)
    assert (claims["iss"], claims["sub"], claims["jti"], claims["tenant"]) == (ISS, SUB, "jti-1", "t-1")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": NOW - 29, "iat": NOW - 329}, id="expired-within-leeway"),
        pytest.param({"iat": NOW + 29}, id="iat-ahead-within-leeway"),
        pytest.param({"aud": ["https://elsewhere.example", AUD]}, id="aud-array-containing-ours"),
    ],
)
def test_clock_skew_within_leeway_passes(
    verifier: JwtVerifier, es384: Signer, claims: dict[str, Any]
) -> None:
    assert verifier.verify(f"Bearer {es384.token(**claims)}", AUD)["jti"] == "jti-1"


def test_lowercase_bearer_scheme_passes(verifier: JwtVerifier, es384: Signer) -> None:
    assert verifier.verify(f"bearer {es384.token()}", AUD)["iss"] == ISS


# Each case: the logged reason, and the Authorization header built from the EHR's key and an impostor's.
REJECTED: dict[str, tuple[str, Callable[[Signer, Signer], str | None]]] = {
    "expired": ("expired", lambda s, _: f"Bearer {s.token(exp=NOW - 31, iat=NOW - 331)}"),
    "wrong-aud": (
        "InvalidAudience",
        lambda s, _: f"Bearer {s.token(aud='https://cds.example.org/cds-services/other')}",
    ),
    "unknown-iss": ("not trusted", lambda s, _: f"Bearer {s.token(iss='https://stranger.example/')}"),
    "unknown-kid": (
        "kid 'rotated-away' not in",
        lambda s, _: f"Bearer {s.token(header={'kid': 'rotated-away'})}",
    ),
    "no-kid": ("no kid", lambda s, _: f"Bearer {s.token(header={'kid': None})}"),
    "alg-none": ("alg 'none' not allowed", lambda s, _: f"Bearer {_alg_none(s)}"),
    "hs256-keyed-with-public-pem": (
        "alg 'HS256' not allowed",
        lambda s, _: f"Bearer {_hs256_with_public_pem(s)}",
    ),
    "jku-not-on-allowlist": (
        "allowlist",
        lambda s, _: f"Bearer {s.token(header={'jku': 'https://attacker.example/jwks'})}",
    ),
    "iat-in-future": ("issued in the future", lambda s, _: f"Bearer {s.token(iat=NOW + 31, exp=NOW + 331)}"),
    "nbf-in-future": ("nbf", lambda s, _: f"Bearer {s.token(nbf=NOW + 31)}"),
    "missing-exp": ('missing the "exp"', lambda s, _: f"Bearer {s.token(exp=None)}"),
    "missing-iat": ('missing the "iat"', lambda s, _: f"Bearer {s.token(iat=None)}"),
    "missing-jti": ('missing the "jti"', lambda s, _: f"Bearer {s.token(jti=None)}"),
    "empty-jti": ("jti must be", lambda s, _: f"Bearer {s.token(jti='')}"),
    # CDS Hooks 2.0.1 §Trusting CDS Clients: sub (the client_id) is REQUIRED
    "missing-sub": ('missing the "sub"', lambda s, _: f"Bearer {s.token(sub=None)}"),
    "empty-sub": ("sub must be", lambda s, _: f"Bearer {s.token(sub='')}"),
    "sub-not-a-string": ("InvalidSubjectError", lambda s, _: f"Bearer {s.token(sub=42)}"),
    "exp-nan": ("finite", lambda s, _: f"Bearer {s.token(exp=float('nan'))}"),
    "exp-infinity": ("finite", lambda s, _: f"Bearer {s.token(exp=float('inf'))}"),
    "exp-not-a-number": ("finite", lambda s, _: f"Bearer {s.token(exp='tomorrow')}"),
    "signed-by-impostor": ("InvalidSignature", lambda _, i: f"Bearer {i.token()}"),
    "payload-tampered": ("InvalidSignature", lambda s, _: f"Bearer {_tampered(s)}"),
    "missing-bearer": ("Bearer <token>", lambda s, _: s.token()),
    "basic-scheme": ("Bearer <token>", lambda s, _: f"Basic {s.token()}"),
    "no-header": ("Bearer <token>", lambda _s, _i: None),
    "empty-bearer": ("Bearer <token>", lambda _s, _i: "Bearer "),
    "garbage-token": ("unreadable token", lambda _s, _i: "Bearer not-a.jwt.at-all"),
    "garbage-three-parts": ("alg None", lambda _s, _i: "Bearer e30.e30.e30"),
}


@pytest.mark.parametrize("case", REJECTED)
def test_rejected(verifier: JwtVerifier, es384: Signer, impostor: Signer, case: str) -> None:
    reason, build = REJECTED[case]
    authorization = build(es384, impostor)
    with pytest.raises(Unauthorized, match=re.escape(reason)) as raised:
        verifier.verify(authorization, AUD)
    token = (authorization or "").removeprefix("Bearer ").removeprefix("Basic ")
    assert not token or token not in str(raised.value), "the token must never appear in the reason"


def test_replayed_jti_is_rejected_and_a_new_jti_passes(verifier: JwtVerifier, es384: Signer) -> None:
    token = f"Bearer {es384.token(jti='once')}"
    verifier.verify(token, AUD)
    with pytest.raises(Unauthorized, match="replayed"):
        verifier.verify(token, AUD)
    assert verifier.verify(f"Bearer {es384.token(jti='twice')}", AUD)["jti"] == "twice"


def test_replay_cache_is_per_issuer(verifier: JwtVerifier, es384: Signer) -> None:
    verifier.verify(f"Bearer {es384.token(jti='shared')}", AUD)
    assert verifier.verify(f"Bearer {es384.token(iss=OTHER_ISS, jti='shared')}", AUD)["iss"] == OTHER_ISS


def test_replay_is_still_refused_after_the_token_expires(
    verifier: JwtVerifier, es384: Signer, clock: Clock
) -> None:
    """Once the cache entry is pruned, the exp check is what keeps the token out."""
    token = f"Bearer {es384.token(jti='late')}"
    verifier.verify(token, AUD)
    clock.now = NOW + 300 + 31
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token, AUD)


@pytest.fixture()
def jku_verifier(httpserver: HTTPServer, es384: Signer, clock: Clock) -> tuple[JwtVerifier, str]:
    url = httpserver.url_for("/jwks")
    httpserver.expect_request("/jwks").respond_with_json({"keys": [es384.jwk]})
    return JwtVerifier({ISS: TrustedIssuer(ISS, jku_allowlist=(url,))}, clock=clock), url


def test_allowlisted_jku_is_fetched_once_and_cached(
    jku_verifier: tuple[JwtVerifier, str], httpserver: HTTPServer, es384: Signer, clock: Clock
) -> None:
    verifier, url = jku_verifier
    for jti in ("a", "b"):
        assert verifier.verify(f"Bearer {es384.token(jti=jti, header={'jku': url})}", AUD)["jti"] == jti
    assert len(httpserver.log) == 1
    clock.now = NOW + 301
    verifier.verify(
        f"Bearer {es384.token(jti='c', iat=clock.now, exp=clock.now + 300, header={'jku': url})}", AUD
    )
    assert len(httpserver.log) == 2, "a stale JWK Set is fetched again"


def test_jku_off_the_allowlist_is_never_fetched(
    jku_verifier: tuple[JwtVerifier, str], httpserver: HTTPServer, es384: Signer
) -> None:
    verifier, _ = jku_verifier
    elsewhere = httpserver.url_for("/attacker-jwks")
    with pytest.raises(Unauthorized, match="allowlist"):
        verifier.verify(f"Bearer {es384.token(header={'jku': elsewhere})}", AUD)
    assert httpserver.log == []


def test_token_without_jku_is_rejected_when_the_issuer_has_only_an_allowlist(
    jku_verifier: tuple[JwtVerifier, str], es384: Signer
) -> None:
    verifier, _ = jku_verifier
    with pytest.raises(Unauthorized, match="no jku"):
        verifier.verify(f"Bearer {es384.token()}", AUD)


@pytest.mark.parametrize("status", [302, 404, 500])
def test_jku_server_failure_is_unauthorized(
    httpserver: HTTPServer, es384: Signer, clock: Clock, status: int
) -> None:
    url = httpserver.url_for("/jwks")
    httpserver.expect_request("/jwks").respond_with_data(
        "", status=status, headers={"Location": "/elsewhere"}
    )
    verifier = JwtVerifier({ISS: TrustedIssuer(ISS, jku_allowlist=(url,))}, clock=clock)
    with pytest.raises(Unauthorized, match="JWK Set"):
        verifier.verify(f"Bearer {es384.token(header={'jku': url})}", AUD)


# load_trusted_issuers


def _write(path: Path, content: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_load_trusted_issuers(tmp_path: Path, es384: Signer, rs384: Signer) -> None:
    _write(tmp_path / "conf" / "keys" / "ehr.json", {"keys": [es384.jwk, rs384.jwk]})
    other_keys = _write(tmp_path / "elsewhere" / "other.json", {"keys": [es384.jwk]})
    config = {
        "issuers": [
            {"iss": ISS, "jwksFile": "keys/ehr.json", "jkuAllowlist": ["https://ehr.example/jwks"]},
            {
                "iss": OTHER_ISS,
                "jwksFile": str(other_keys),
                "fhirServers": ["https://FHIR.other-ehr.example/r4/", "http://127.0.0.1:8081/fhir"],
            },
            {"iss": "https://jku-only.example/", "jkuAllowlist": ["https://jku-only.example/jwks"]},
        ]
    }
    issuers = load_trusted_issuers(_write(tmp_path / "conf" / "issuers.json", config))
    assert issuers[ISS] == TrustedIssuer(
        ISS, jwks={"keys": [es384.jwk, rs384.jwk]}, jku_allowlist=("https://ehr.example/jwks",)
    )
    assert issuers[OTHER_ISS].jwks == {"keys": [es384.jwk]}
    assert issuers[OTHER_ISS].fhir_servers == {
        FhirBase("https", "fhir.other-ehr.example", 443, "/r4"),
        FhirBase("http", "127.0.0.1", 8081, "/fhir"),
    }
    assert issuers["https://jku-only.example/"].jwks is None
    verifier = JwtVerifier(issuers, clock=Clock())
    assert verifier.verify(f"Bearer {es384.token()}", AUD)["iss"] == ISS


def _entry(**fields: Any) -> dict[str, Any]:
    return {"issuers": [{"iss": ISS, "jwksFile": "keys.json"} | fields]}


CONFIG_ERRORS: list[Any] = [
    pytest.param(None, None, "cannot be read", id="missing-file"),
    pytest.param("{not json", None, "not valid JSON", id="bad-json"),
    pytest.param({"issuer": []}, None, "'issuers' list", id="no-issuers-list"),
    pytest.param({"issuers": ["x"]}, None, "expected an object", id="entry-not-object"),
    pytest.param({"issuers": [{"iss": ISS}]}, None, "needs 'jwksFile' or", id="neither-jwks-nor-jku"),
    pytest.param(_entry(jwksFile=None, jkuAllowlist=[]), None, "needs 'jwksFile' or", id="empty-allowlist"),
    pytest.param({"issuers": [_entry()["issuers"][0]] * 2}, "ok", "duplicate iss", id="duplicate-iss"),
    pytest.param(_entry(iss=""), "ok", "'iss' must be", id="empty-iss"),
    pytest.param(_entry(jwksfile="keys.json"), "ok", "unknown key", id="misspelt-key"),
    pytest.param(_entry(jkuAllowlist=["http://ehr.example/jwks"]), "ok", "https://", id="jku-not-https"),
    pytest.param(_entry(jkuAllowlist="https://ehr.example/jwks"), "ok", "https://", id="jku-not-a-list"),
    pytest.param(_entry(fhirServers="https://ehr.example/r4"), "ok", "fhirServers", id="fhir-not-a-list"),
    pytest.param(_entry(fhirServers=["ehr.example/r4"]), "ok", "fhirServers", id="fhir-no-scheme"),
    pytest.param(_entry(fhirServers=["https://ehr.example/r4?x=1"]), "ok", "fhirServers", id="fhir-query"),
    pytest.param(_entry(fhirServers=["https://u@ehr.example/r4"]), "ok", "fhirServers", id="fhir-user-info"),
    pytest.param(_entry(fhirServers=[42]), "ok", "fhirServers", id="fhir-not-a-string"),
    pytest.param(_entry(), None, "cannot be read", id="jwks-file-missing"),
    pytest.param(_entry(), "{", "not valid JSON", id="jwks-file-bad-json"),
    pytest.param(_entry(), '{"keys": []}', "non-empty 'keys'", id="jwks-empty"),
    pytest.param(_entry(), "no-kid", "needs a 'kid'", id="jwks-key-without-kid"),
    pytest.param(_entry(), "duplicate-kid", "duplicate kid", id="jwks-duplicate-kid"),
    pytest.param(_entry(), "private", "private key material", id="jwks-private-key"),
    pytest.param(_entry(), "symmetric", "kty must be", id="jwks-symmetric-key"),
    pytest.param(_entry(), "broken", "not a usable key", id="jwks-broken-key"),
]


@pytest.mark.parametrize(("config", "keys", "message"), CONFIG_ERRORS)
def test_load_trusted_issuers_refuses(
    tmp_path: Path, es384: Signer, config: Any, keys: Any, message: str
) -> None:
    jwk = es384.jwk
    private = ECAlgorithm.to_jwk(es384.private_key, as_dict=True) | {"kid": "k"}
    key_sets = {
        "ok": {"keys": [jwk]},
        "no-kid": {"keys": [{k: v for k, v in jwk.items() if k != "kid"}]},
        "duplicate-kid": {"keys": [jwk, jwk]},
        "private": {"keys": [private]},
        "symmetric": {"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]},
        "broken": {"keys": [jwk | {"x": "AAAA"}]},
    }
    if keys is not None:
        _write(tmp_path / "keys.json", key_sets.get(keys, keys))
    path = tmp_path / "issuers.json"
    if config is not None:
        _write(path, config)
    with pytest.raises(ConfigError, match=message):
        load_trusted_issuers(path)
