"""Ask an EHR's authorization server whether an access token is active (OAuth 2.0 Token Introspection,
RFC 7662), and remember the answer briefly.

The clinician app hands neckcheck an opaque SMART access token; only the server that issued it can say
whether it is still good, for whom and for what. neckcheck is the protected resource of RFC 7662 §2.1: it
authenticates to the endpoint with its own client credentials (``client_secret_basic`` or
``client_secret_post``, RFC 6749 §2.3.1) and POSTs the token. This is a form POST with basic auth, so plain
``requests`` (already the FHIR client's library, on the app's shared session) does it; Authlib's client
would add a dependency for the same request.

Only an ``active: true`` answer whose ``exp`` (if given) lies ahead is taken (RFC 7662 §2.2); anything
else - inactive, unknown, a non-JSON or non-200 answer, a server that cannot be reached - is a
``Unauthorized`` whose reason is for the log only, so every refusal looks the same to the caller.

**Cache.** An active answer is kept in a bounded TLRU cache (cachetools), keyed by the endpoint and a
SHA-256 of the token (the token itself is never kept), for at most ``cache_seconds`` and never past the
token's ``exp``. Within that window a revoked token is still taken: the window is the revocation delay an
operator accepts (NECKCHECK_APP_TOKEN_CACHE_SECONDS; 0 turns the cache off). Refusals are not cached. The
cache is per process (each gunicorn worker has its own).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote_plus

import requests
from cachetools import TLRUCache

from service.errors import Unauthorized

log = logging.getLogger("neckcheck.security")

TIMEOUT: Final = (2, 5)  # (connect, read) seconds: a slow authorization server must not hold a turn long
MAX_ENTRIES: Final = 4096  # tokens remembered per process; the least recently used go first


@dataclass(frozen=True)
class IntrospectionEndpoint:
    """One issuer's RFC 7662 endpoint and neckcheck's credentials there (the trusted-issuers file)."""

    url: str
    client_id: str
    client_secret: str = field(repr=False)  # never in a log line or a repr
    auth_method: str = "client_secret_basic"

    def request_parts(self, token: str) -> tuple[dict[str, str], dict[str, str]]:
        """The form and headers of one introspection request, with the client authentication."""
        form = {"token": token, "token_type_hint": "access_token"}
        headers = {"Accept": "application/json"}
        if self.auth_method == "client_secret_post":
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        else:
            # RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded
            # (requests' own HTTPBasicAuth skips that step, which breaks secrets with ':' or '%')
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        return form, headers


class Introspector:
    """Introspects tokens at the endpoints it is handed, with the cache described above; one per app."""

    def __init__(
        self,
        session: requests.Session,
        *,
        cache_seconds: float = 30,
        clock: Callable[[], float] = time.time,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._session = session
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: TLRUCache[tuple[str, str], dict[str, Any]] = TLRUCache(
            maxsize=max_entries, ttu=self._expiry, timer=clock
        )
        self._lock = threading.Lock()  # cachetools caches are not thread-safe

    def active_claims(self, endpoint: IntrospectionEndpoint, token: str) -> dict[str, Any]:
        """The introspection response for an active, unexpired ``token``; else ``Unauthorized``."""
        key = (endpoint.url, hashlib.sha256(token.encode("utf-8")).hexdigest())
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            _check_times(cached, self._clock())  # the cache never outlives exp; checked again all the same
            return cached
        claims = self._ask(endpoint, token)
        _check_times(claims, self._clock())
        if self._cache_seconds > 0:
            with self._lock:
                self._cache[key] = claims
        return claims

    def _expiry(self, _key: tuple[str, str], claims: dict[str, Any], now: float) -> float:
        exp = claims.get("exp")
        return min(now + self._cache_seconds, float(exp) if exp is not None else math.inf)

    def _ask(self, endpoint: IntrospectionEndpoint, token: str) -> dict[str, Any]:
        form, headers = endpoint.request_parts(token)
        try:
            # no redirects: the credentials and the token go to the configured URL only
            response = self._session.post(
                endpoint.url, data=form, headers=headers, timeout=TIMEOUT, allow_redirects=False
            )
            if response.status_code != 200:
                raise Unauthorized(f"introspection at {endpoint.url} answered HTTP {response.status_code}")
            claims = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise Unauthorized(f"introspection at {endpoint.url} unavailable ({type(exc).__name__})") from exc
        if not isinstance(claims, dict):
            raise Unauthorized(f"introspection at {endpoint.url} did not answer with a JSON object")
        if claims.get("active") is not True:  # RFC 7662 §2.2: a boolean; "true" or 1 are not active
            raise Unauthorized("token is not active (introspection)")
        return claims


def _check_times(claims: dict[str, Any], now: float) -> None:
    """``exp`` and ``nbf`` (RFC 7662 §2.2, NumericDate) against our clock: an answer that calls a token
    active past its expiry, or before it is valid, is not taken."""
    for name in ("exp", "nbf"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise Unauthorized(f"introspection {name} is not a finite number")
        if (name == "exp" and value <= now) or (name == "nbf" and value > now):
            state = "expired" if name == "exp" else "not yet valid"
            raise Unauthorized(f"token {state} (introspection {name})")
