"""Check the CDS client's bearer JWT before a hook is answered (CDS Hooks 2.0 §Trusting CDS Clients).

Each hook request carries ``Authorization: Bearer <JWT>``, signed by the EHR with an asymmetric key. Only
configured issuers are trusted; each one's public keys come from a JWK Set file or from a ``jku`` URL that is
exactly on that issuer's allowlist (a token must never choose where its own keys come from). Every failure is
an ``Unauthorized`` whose reason is for the server log only; the token never appears in a log or a message,
since it is a credential until it expires.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import jwt
import requests

from service.errors import Unauthorized
from service.fhir_base import FhirBase
from service.security.fhir_servers import FhirServerPolicy
from service.security.issuers import TrustedIssuer

# Asymmetric only: ``none`` and HS* would let anyone holding the public key sign (RFC 8725 §2.1, §3.1).
log = logging.getLogger("neckcheck.security")

ALLOWED_ALGORITHMS: Final = ("ES384", "RS384", "ES256", "RS256")
JWKS_TIMEOUT: Final = (2, 5)  # (connect, read) seconds; a slow key server must not stall every hook call.
# CDS Hooks 2.0.1 §Trusting CDS Clients: iss, aud, exp, iat, sub (the client_id) and jti are all REQUIRED.
REQUIRED_CLAIMS: Final = ("iss", "sub", "aud", "exp", "iat", "jti")
# Reasons quote attacker-supplied header/claim values; cap them so a log line stays a line.
_QUOTE: Final = 120


class JwtVerifier:
    """Verify bearer tokens from trusted issuers and refuse replays.

    The replay cache (``(iss, jti)`` → ``exp``) and the ``jku`` JWK Set cache live in this instance, which the
    app factory owns. ``shared_replay`` (the app passes the database's ReplayStore) catches a token replayed
    to another worker or replica; if that store is down, each process still refuses replays it has seen.
    """

    def __init__(
        self,
        issuers: Mapping[str, TrustedIssuer],
        *,
        session: requests.Session | None = None,
        leeway_seconds: int = 30,
        clock: Callable[[], float] = time.time,
        jwks_cache_seconds: int = 300,
        shared_replay: Callable[[str, str, float], bool] | None = None,
    ) -> None:
        self._issuers = dict(issuers)
        self._session = session if session is not None else requests.Session()
        self._leeway = leeway_seconds
        self._clock = clock
        self._jwks_cache_seconds = jwks_cache_seconds
        self._jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._shared_replay = shared_replay  # e.g. ReplayStore.first_use: across workers and replicas

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The claims of a valid token for ``audience`` (this endpoint's URL); else raise Unauthorized."""
        token = _bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"unreadable token header ({type(exc).__name__})") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:  # before any key lookup or signature check
            raise Unauthorized(f"alg {_quote(alg)} not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token header has no kid")
        issuer = self._issuer_of(token)
        key = _signing_key(self._jwks_for(issuer, header), kid, str(alg), issuer.iss)
        claims = _decode(token, key, issuer.iss, audience)
        exp = self._check_times(claims)
        self._refuse_replay(issuer.iss, claims["jti"], exp)
        return claims

    def fhir_server_policy(self, iss: str) -> FhirServerPolicy:
        """The FHIR servers that hook calls from ``iss`` (a verified token's issuer) may make us contact."""
        return FhirServerPolicy(f"issuer {iss!r}", self._issuers[iss].fhir_servers)

    def all_fhir_servers(self) -> frozenset[FhirBase]:
        """Every FHIR server any trusted issuer lists: where the clinician app may read a patient's data."""
        return frozenset(base for issuer in self._issuers.values() for base in issuer.fhir_servers)

    def _issuer_of(self, token: str) -> TrustedIssuer:
        # Unverified read only to choose the keys; the signature check below covers the same payload.
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"unreadable token payload ({type(exc).__name__})") from exc
        iss = unverified.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise Unauthorized(f"issuer {_quote(iss)} is not trusted")
        return issuer

    def _jwks_for(self, issuer: TrustedIssuer, header: dict[str, Any]) -> dict[str, Any]:
        if "jku" not in header:
            if issuer.jwks is None:
                raise Unauthorized(f"no jku and no configured JWK Set for issuer {issuer.iss!r}")
            return issuer.jwks
        jku = header["jku"]
        if not isinstance(jku, str) or jku not in issuer.jku_allowlist:
            raise Unauthorized(f"jku {_quote(jku)} is not on the allowlist of issuer {issuer.iss!r}")
        return self._fetch_jwks(jku)

    def _fetch_jwks(self, url: str) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            cached = self._jwks_cache.get(url)
        if cached is not None and now - cached[0] < self._jwks_cache_seconds:
            return cached[1]
        try:
            # No redirects: the allowlisted URL itself must serve the keys.
            response = self._session.get(url, timeout=JWKS_TIMEOUT, allow_redirects=False)
            if response.status_code != 200:
                raise Unauthorized(f"JWK Set at {url} answered HTTP {response.status_code}")
            jwks = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise Unauthorized(f"JWK Set at {url} unavailable ({type(exc).__name__})") from exc
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise Unauthorized(f"JWK Set at {url} has no 'keys' list")
        with self._lock:
            self._jwks_cache[url] = (now, jwks)
        return jwks

    def _check_times(self, claims: dict[str, Any]) -> float:
        """Check exp/iat/nbf against the injected clock (PyJWT's own checks use the wall clock)."""
        now = self._clock()
        exp = _seconds(claims, "exp")
        if exp <= now - self._leeway:
            raise Unauthorized("token expired")
        if _seconds(claims, "iat") > now + self._leeway:
            raise Unauthorized("token issued in the future")
        if "nbf" in claims and _seconds(claims, "nbf") > now + self._leeway:
            raise Unauthorized("token not yet valid (nbf)")
        return exp

    def _refuse_replay(self, iss: str, jti: str, exp: float) -> None:
        """Keep each (iss, jti) until its token could no longer pass the exp check; refuse a second use."""
        now = self._clock()
        with self._lock:
            self._seen = {seen: until for seen, until in self._seen.items() if until > now - self._leeway}
            if (iss, jti) in self._seen:
                raise Unauthorized(f"jti {_quote(jti)} replayed for issuer {iss!r}")
            self._seen[(iss, jti)] = exp
        if self._shared_replay is None:
            return
        try:
            first = self._shared_replay(iss, jti, exp)
        except Exception as exc:  # the shared store is down: this process still refuses what it has seen
            log.warning("shared jti store unavailable (%s); replay check is per process", type(exc).__name__)
            return
        if not first:
            raise Unauthorized(f"jti {_quote(jti)} replayed for issuer {iss!r} (seen by another process)")


def _bearer_token(authorization: str | None) -> str:
    parts = (authorization or "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":  # RFC 6750 §2.1; the scheme is case-insensitive
        raise Unauthorized("Authorization header is not 'Bearer <token>'")
    return parts[1]


def _signing_key(jwks: dict[str, Any], kid: str, alg: str, iss: str) -> jwt.PyJWK:
    """The key with this ``kid``, bound to the token's (already allowed) ``alg``."""
    candidates = [
        key
        for key in jwks.get("keys", [])
        if isinstance(key, dict) and key.get("kid") == kid and key.get("use", "sig") == "sig"
    ]
    if not candidates:
        raise Unauthorized(f"kid {_quote(kid)} not in the JWK Set of issuer {iss!r}")
    key = candidates[0]
    if key.get("alg", alg) != alg:
        raise Unauthorized(f"token alg {alg} does not match the alg of key {_quote(kid)}")
    try:
        return jwt.PyJWK(key, algorithm=alg)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise Unauthorized(f"key {_quote(kid)} of issuer {iss!r} cannot verify {alg}") from exc


def _decode(token: str, key: jwt.PyJWK, iss: str, audience: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=list(ALLOWED_ALGORITHMS),
            audience=audience,
            issuer=iss,
            # Times are checked against the injected clock in _check_times.
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": [*REQUIRED_CLAIMS],
            },
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"token from issuer {iss!r} rejected ({type(exc).__name__}: {exc})") from exc
    for name in ("jti", "sub"):
        if not isinstance(claims[name], str) or not claims[name]:
            raise Unauthorized(f"{name} must be a non-empty string")
    return claims


def _seconds(claims: dict[str, Any], name: str) -> float:
    """A NumericDate (RFC 7519 §2); NaN or Infinity would slip past every comparison, so they are refused."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Unauthorized(f"{name} is not a finite number")
    return float(value)


def _quote(value: object) -> str:
    return repr(value)[:_QUOTE]
