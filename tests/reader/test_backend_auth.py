"""The SMART Backend Services client's own checks: which keys it signs with, which scopes it accepts, and
what INPUT names. The exchange with a real token endpoint is tests/screen/test_remote_export.py's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from service.errors import RemoteExportError
from service.reader.backend_auth import BackendToken, default_scope, load_key, uncovered
from service.reader.bulk_request import Endpoint, endpoint

TYPES = ("Observation", "Patient")


def pem(key: object, path: Path, password: bytes | None = None) -> Path:
    crypt = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, crypt)  # type: ignore[attr-defined]
    )
    return path


def test_an_rsa_pem_signs_rs384_and_a_p384_jwk_es384_with_its_own_kid(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = load_key(pem(rsa_key, tmp_path / "k.pem"), "rsa-1")
    assert (key.alg, key.kid) == ("RS384", "rsa-1")
    ec_key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key))
    (tmp_path / "k.jwk").write_text(json.dumps({"keys": [{**jwk, "kid": "ec-1"}]}))  # a JWK Set of one
    key = load_key(tmp_path / "k.jwk", None)
    assert (key.alg, key.kid) == ("ES384", "ec-1")

    # the assertion: SMART's claims, signed so the registered public key verifies it
    token = BackendToken(None, "https://ehr.example/token", "client-1", key, "system/*.rs", TYPES)  # type: ignore[arg-type]
    assertion = token.assertion()
    assert jwt.get_unverified_header(assertion) == {"alg": "ES384", "kid": "ec-1", "typ": "JWT"}
    claims = jwt.decode(
        assertion, ec_key.public_key(), algorithms=["ES384"], audience="https://ehr.example/token"
    )
    assert claims["iss"] == claims["sub"] == "client-1"
    assert 0 < claims["exp"] - claims["iat"] <= 300 and claims["jti"]
    assert token.assertion() != assertion  # a new jti each time: a server refuses a replayed one


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "RSA key of 1024 bits"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES384 needs P-384"),
        (lambda: ed25519.Ed25519PrivateKey.generate(), "use an RSA (RS384) or P-384 (ES384) key"),
    ],
)
def test_a_key_smart_does_not_sign_with_is_refused_saying_why(
    tmp_path: Path, make: object, said: str
) -> None:
    path = pem(make(), tmp_path / "k.pem")  # type: ignore[operator]
    with pytest.raises(RemoteExportError, match=re.escape(said)):
        load_key(path, "k")


def test_an_unusable_key_file_is_refused_without_showing_the_key(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(RemoteExportError, match="not an unencrypted PEM private key"):
        load_key(pem(rsa_key, tmp_path / "locked.pem", b"secret"), "k")
    with pytest.raises(RemoteExportError, match="give --kid"):
        load_key(pem(rsa_key, tmp_path / "k.pem"), None)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    (tmp_path / "public.jwk").write_text(json.dumps(public))
    with pytest.raises(RemoteExportError, match="not a private JWK"):
        load_key(tmp_path / "public.jwk", "k")
    with pytest.raises(RemoteExportError, match="No such file"):
        load_key(tmp_path / "missing.pem", "k")


@pytest.mark.parametrize(
    ("scope", "missing"),
    [
        (default_scope(TYPES), []),
        ("system/*.rs", []),
        ("system/*.read", []),
        ("system/Observation.rs", ["Patient"]),
        ("system/Observation.cruds system/Patient.r", []),
        ("system/Patient.write system/Observation.read", ["Patient"]),  # write is not read
        ("patient/*.rs user/Observation.rs", TYPES),  # not a system client's
        ("", TYPES),
    ],
)
def test_a_granted_scope_must_let_every_screened_type_be_read(scope: str, missing: list[str]) -> None:
    assert uncovered(scope, TYPES) == list(missing)


@pytest.mark.parametrize(
    ("url", "found"),
    [
        (
            "https://ehr.example/fhir/Group/neuro-clinic",
            Endpoint("https://ehr.example/fhir", "group", "neuro-clinic"),
        ),
        ("https://ehr.example/fhir/Group/g1/$export", Endpoint("https://ehr.example/fhir", "group", "g1")),
        ("https://ehr.example/fhir/Patient/", Endpoint("https://ehr.example/fhir", "patient")),
        ("https://ehr.example/r4", Endpoint("https://ehr.example/r4", "system")),
        ("http://127.0.0.1:8080/fhir", Endpoint("http://127.0.0.1:8080/fhir", "system")),
        ("/data/export", None),
        ("export/manifest.json", None),
    ],
)
def test_input_names_a_path_or_an_endpoint_and_its_level(url: str, found: Endpoint | None) -> None:
    assert endpoint(url) == found


def test_plain_http_to_another_machine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RemoteExportError, match="use https"):
        endpoint("http://ehr.example/fhir/Patient")
    with pytest.raises(RemoteExportError, match="without a query"):
        endpoint("https://ehr.example/fhir/Patient?_type=Observation")
