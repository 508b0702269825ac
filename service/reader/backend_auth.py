"""SMART Backend Services (SMART App Launch 2.x, "Backend Services"): an access token for a system client.

neckcheck screen authorises to a FHIR server with no user present: the client is registered at the server
with its public key (a JWK Set), and each token request is a ``client_credentials`` grant authenticated by
a JWT the client signs with its private key (``private_key_jwt``, RFC 7523). What the server supports is
read from ``[base]/.well-known/smart-configuration``, never assumed: a missing token endpoint, asymmetric
client authentication, ``client_credentials`` grant or signing algorithm is said in one line naming it.

Tokens expire; ``BackendToken.header`` asks for a new one shortly before the current one does (a tenth of
its lifetime, at most a minute, early), and ``renew`` after a server refuses one anyway (clocks differ).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from service.errors import NotSupportedByServer, RemoteExportError
from service.reader.bulk_answers import broke

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 240  # SMART: the assertion's exp "no more than five minutes in the future"
MIN_RSA_BITS = 2048
TIMEOUT = (10.0, 60.0)  # connect, read: a token endpoint answers in seconds or not at all


@dataclass(frozen=True)
class ClientKey:
    """The client's private key, the algorithm SMART allows for it and the ``kid`` registered with it."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    alg: str  # RS384 or ES384
    kid: str


def load_key(path: Path, kid: str | None) -> ClientKey:
    """The private key in ``path``: PEM (PKCS#8 or traditional, unencrypted) or a JWK (or a JWK Set
    holding it). The ``kid`` is ``--kid``, else the JWK's own. Raises RemoteExportError saying what is
    wrong with the key (never the key itself)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise RemoteExportError(f"--key {path}: {exc.strerror or exc}") from exc
    if text.lstrip().startswith(b"{"):
        key, jwk_kid, jwk_alg = _from_jwk(path, text)
    else:
        try:
            loaded = load_pem_private_key(text, password=None)
        except (ValueError, TypeError) as exc:
            raise RemoteExportError(
                f"--key {path}: not an unencrypted PEM private key or a JWK ({exc})"
            ) from exc
        key, jwk_kid, jwk_alg = _usable(path, loaded), None, None
    alg = "RS384" if isinstance(key, rsa.RSAPrivateKey) else "ES384"
    if jwk_alg is not None and jwk_alg != alg:
        raise RemoteExportError(
            f"--key {path}: the JWK says alg {jwk_alg}; SMART Backend Services signs with {alg} for this key"
        )
    if kid is not None and jwk_kid is not None and kid != jwk_kid:
        raise RemoteExportError(f"--kid {kid} differs from the JWK's kid {jwk_kid}")
    chosen = kid or jwk_kid
    if not chosen:
        raise RemoteExportError(f"--key {path}: give --kid, the key id registered with the server")
    return ClientKey(key, alg, chosen)


def _from_jwk(path: Path, text: bytes) -> tuple[Any, str | None, str | None]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RemoteExportError(f"--key {path}: not a JWK (not JSON)") from exc
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        private = [k for k in data["keys"] if isinstance(k, dict) and "d" in k]
        if len(private) != 1:
            raise RemoteExportError(f"--key {path}: a JWK Set must hold exactly one private key")
        data = private[0]
    if not isinstance(data, dict) or "d" not in data:
        raise RemoteExportError(f"--key {path}: not a private JWK (no 'd')")
    try:
        key = jwt.PyJWK(data).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise RemoteExportError(f"--key {path}: not a usable JWK ({exc})") from exc
    kid, alg = data.get("kid"), data.get("alg")
    return _usable(path, key), kid if isinstance(kid, str) else None, alg if isinstance(alg, str) else None


def _usable(path: Path, key: object) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """An RSA key of 2048 bits or more (RS384), or an EC key on P-384 (ES384): what SMART asks clients
    to sign with (SMART App Launch 2.x, Backend Services, "Registering a client")."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise RemoteExportError(f"--key {path}: an RSA key of {key.key_size} bits; use {MIN_RSA_BITS}+")
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP384R1):
            raise RemoteExportError(f"--key {path}: an EC key on {key.curve.name}; ES384 needs P-384")
        return key
    raise RemoteExportError(f"--key {path}: {type(key).__name__}: use an RSA (RS384) or P-384 (ES384) key")


def token_endpoint(session: requests.Session, base: str, alg: str) -> str:
    """The token endpoint from ``[base]/.well-known/smart-configuration``, once it says the server does
    what this client needs. Raises NotSupportedByServer naming the first missing capability."""
    url = f"{base}/.well-known/smart-configuration"
    try:
        answer = session.get(url, headers={"Accept": "application/json"}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise RemoteExportError(f"GET {url}: {broke(exc)}") from exc
    try:
        config = answer.json() if answer.status_code == 200 else None
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise NotSupportedByServer(
            f"{base} offers no SMART configuration ({url}: {answer.status_code}): "
            "SMART Backend Services is needed to authorise"
        )
    endpoint = config.get("token_endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        raise NotSupportedByServer(f"{base}'s SMART configuration names no token_endpoint")
    _offers(base, config, "token_endpoint_auth_methods_supported", "private_key_jwt")
    _offers(base, config, "grant_types_supported", "client_credentials")
    _offers(base, config, "token_endpoint_auth_signing_alg_values_supported", alg)
    return endpoint


def _offers(base: str, config: dict[str, Any], field: str, wanted: str) -> None:
    """A list the configuration gives must hold ``wanted``; one it leaves out says nothing either way
    (only token_endpoint is required of every server by SMART 2.x)."""
    values = config.get(field)
    if isinstance(values, list) and wanted not in values:
        raise NotSupportedByServer(
            f"{base} does not offer {wanted} ({field}: {', '.join(map(str, values)) or 'none'})"
        )


class BackendToken:
    """One client's access token for one server, asked again before it expires or after a refusal."""

    def __init__(
        self,
        session: requests.Session,
        endpoint: str,
        client_id: str,
        key: ClientKey,
        scope: str,
        needed: Sequence[str],
    ):
        self.session, self.endpoint, self.client_id, self.key = session, endpoint, client_id, key
        self.scope, self.needed = scope, tuple(needed)
        self.token: str | None = None
        self.renew_at = 0.0  # time.monotonic() after which the token is asked again
        self.granted = 0  # tokens obtained so far

    def header(self) -> dict[str, str]:
        if self.token is None or time.monotonic() >= self.renew_at:
            self.renew()
        return {"Authorization": f"Bearer {self.token}"}

    def renew(self) -> None:
        """Ask the token endpoint for a new access token (RFC 6749 §4.4 with an RFC 7523 assertion)."""
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        try:
            answer = self.session.post(self.endpoint, data=form, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise RemoteExportError(f"POST {self.endpoint}: {broke(exc)}") from exc
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code != 200 or not isinstance(body, dict):
            error = body.get("error", "") if isinstance(body, dict) else ""
            said = body.get("error_description", "") if isinstance(body, dict) else ""
            raise RemoteExportError(
                f"the token endpoint refused client {self.client_id} ({answer.status_code} {error}"
                f"{': ' + str(said)[:200] if said else ''})"
            )
        token, lifetime = body.get("access_token"), body.get("expires_in", 300)
        if not isinstance(token, str) or str(body.get("token_type", "")).lower() != "bearer":
            raise RemoteExportError(f"POST {self.endpoint}: the answer holds no bearer access_token")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = 300
        granted = body.get("scope", self.scope)  # RFC 6749 §5.1: absent when it is the one asked for
        missing = uncovered(str(granted), self.needed)
        if missing:
            raise RemoteExportError(
                f"the server granted scope '{granted}', which does not let neckcheck read "
                f"{', '.join(missing)}: screening would miss them. Register the client for "
                "system/<type>.rs of each, or give --scope"
            )
        self.token = token
        self.renew_at = time.monotonic() + lifetime - min(60.0, lifetime / 10)
        self.granted += 1

    def assertion(self) -> str:
        """The signed client assertion (SMART 2.x Backend Services, "Authenticating to the token
        endpoint"): iss = sub = client_id, aud = the token endpoint, a short exp and a unique jti."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.endpoint,
            "exp": now + ASSERTION_SECONDS,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(claims, self.key.key, algorithm=self.key.alg, headers=headers)


def default_scope(types: Sequence[str]) -> str:
    """SMART v2 scopes to read and search each type: ``system/Observation.rs ...``."""
    return " ".join(f"system/{t}.rs" for t in types)


def uncovered(scope: str, types: Sequence[str]) -> list[str]:
    """The types no scope in ``scope`` lets a system client read: v1 (``system/T.read``, ``.*``) or v2
    (``system/T.rs``, any permissions holding ``r``), ``T`` a type or ``*``."""
    readable: set[str] = set()
    for item in scope.split():
        context, _, rest = item.partition("/")
        kind, _, permissions = rest.partition(".")
        permissions = permissions.split("?", 1)[0]
        v2 = set(permissions) <= set("cruds") and "r" in permissions
        if context == "system" and (permissions in ("read", "*") or v2):
            readable.add(kind)
    return [t for t in types if t not in readable and "*" not in readable]
