"""An EHR's signing key and the trusted-issuers file that names it, for tests of the JWT-protected routes."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ISS = "https://ehr.example.org"
KID = "test-key-1"
# NECKCHECK_PUBLIC_URL for apps with trusted issuers (required then): the Flask test client's host URL.
LOCAL = "http://localhost"


@dataclass
class Ehr:
    """Signs CDS Hooks JWTs the way an EHR does (CDS Hooks 2.0.1 §Trusting CDS Clients)."""

    key: ec.EllipticCurvePrivateKey
    issuers_file: Path

    def token(self, audience: str, **claims: Any) -> str:
        """A valid token for ``audience``; a claim passed as None is left out."""
        now = int(time.time())
        payload = {
            "iss": ISS,
            "sub": "ehr-client",
            "aud": audience,
            "exp": now + 300,
            "iat": now,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, self.key, algorithm="ES384", headers={"kid": KID})

    def settings(self, **more: Any) -> dict[str, Any]:
        """App settings that trust this EHR, as production runs: no insecure dev, a public URL."""
        return {"insecure_dev": False, "trusted_issuers_file": self.issuers_file, "public_url": LOCAL, **more}

    def headers(self, audience: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(audience, **claims)}"}


def make_ehr(
    folder: Path,
    fhir_servers: tuple[str, ...] = (),
    introspection: dict[str, str] | None = None,
    checks_tokens: tuple[str, ...] = (),
) -> Ehr:
    """A new EHR key, trusted by an issuers file in ``folder``; ``fhir_servers`` is its fhirServers list,
    of which ``checks_tokens`` are marked as checking the app's tokens themselves; ``introspection`` is its
    RFC 7662 entry (tests/smart_ehr.py ``SmartEhr.introspection``)."""
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    (folder / "ehr-jwks.json").write_text(
        json.dumps({"keys": [{**jwk, "kid": KID, "alg": "ES384", "use": "sig"}]})
    )
    issuers = folder / "trusted-issuers.json"
    servers = [{"url": url, "checksTokens": True} if url in checks_tokens else url for url in fhir_servers]
    entry: dict[str, Any] = {"iss": ISS, "jwksFile": "ehr-jwks.json", "fhirServers": servers}
    if introspection is not None:
        entry["introspection"] = introspection
    issuers.write_text(json.dumps({"issuers": [entry]}))
    return Ehr(key, issuers)
