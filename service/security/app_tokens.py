"""The clinician app's token check: which FHIR servers the app may read, and whether the caller's token may.

The app's API reads a patient's chart with the SMART access token the browser sends. Forwarding any
bearer string would make a FHIR server that does not check tokens open to anyone through neckcheck, and
would let the audit trail name a caller nobody verified. So, before anything is read, each FHIR server a
trusted issuer lists (``fhirServers``) is used by the app in one of two ways, fixed at start-up:

- **introspected**: its issuer has an ``introspection`` endpoint. The token must be active and unexpired
  there (RFC 7662), carry the launched patient as its ``patient`` (SMART App Launch 2.x §Token
  Introspection), and scopes that let us search every resource type the app reads
  (service/security/smart_scopes.py). The audit record names the issuer and the introspection's ``sub``
  (or ``username``); an answer naming neither is refused, since the read could not be attributed.
- **checks tokens itself**: the operator marked the server ``checksTokens: true`` and no issuer lists it
  with introspection. The token goes to the server unverified by us; its refusal (401/403) is answered as
  any other refusal, and the audit record says the subject was not verified.

Any other server is not one the app may read (a 412 naming ``fhirServer``, as for an unlisted server).
Every refusal of a token is the same bare 401 (service/http/errors.py); why is in the log only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from service.errors import ConfigError, PrefetchUnavailable, Unauthorized
from service.fhir_base import FhirBase, base_of
from service.security.introspection import Introspector
from service.security.issuers import TrustedIssuer
from service.security.smart_scopes import allows_read, missing_searches

UNVERIFIED = "subject not verified (the FHIR server checks tokens)"


class AppTokens:
    """The app's FHIR servers, each with how its tokens are checked (built once per app from the issuers)."""

    def __init__(self, issuers: Mapping[str, TrustedIssuer], introspector: Introspector) -> None:
        self._introspector = introspector
        self._introspected: dict[FhirBase, TrustedIssuer] = {}
        for issuer in issuers.values():
            if issuer.introspection is None:
                continue
            for base in issuer.fhir_servers:
                other = self._introspected.setdefault(base, issuer)
                if other is not issuer:
                    # a token for this server could be either issuer's: neckcheck could not tell where to ask
                    raise ConfigError(
                        f"trusted issuers {other.iss!r} and {issuer.iss!r} both list FHIR server {base} "
                        "with an introspection endpoint; list it under one of them"
                    )
        self._self_checking = frozenset(
            base for i in issuers.values() for base in i.self_checking if base not in self._introspected
        )

    def servers(self) -> frozenset[FhirBase]:
        """The FHIR servers the app may read (and its pages may connect to)."""
        return frozenset(self._introspected) | self._self_checking

    def caller(
        self,
        token: str | None,
        fhir_server: str,
        patient: str,
        searched: Iterable[str],
        context: Iterable[str] = (),
    ) -> tuple[str, frozenset[str]]:
        """Who the audit names once ``token`` may read ``patient``'s ``searched`` types on ``fhir_server``,
        with which of the ``context`` types (read by id, only shown: the Patient) the token may also read.

        A token that may not read a context type is not refused: the app shows that part as not on record.
        A server that checks tokens itself is sent every read; it refuses what the token does not allow.
        Raises ``Unauthorized`` (no token, or a token refused for any reason) or ``PrefetchUnavailable``
        (a server the app may not read). Nothing is read from the FHIR server here.
        """
        if not token:
            raise Unauthorized("reading a FHIR server needs the SMART access token (Authorization: Bearer)")
        base = base_of(fhir_server)
        issuer = self._introspected.get(base) if base is not None else None
        if issuer is None or issuer.introspection is None:
            if base is not None and base in self._self_checking:
                return f"{base}|{UNVERIFIED}", frozenset(context)
            raise PrefetchUnavailable(
                "fhirServer is not a FHIR server the clinician app may read: it must be in a trusted "
                "issuer's fhirServers, and that issuer must have an introspection endpoint or the server "
                "must be marked checksTokens",
                "fhirServer",
            )
        claims = self._introspector.active_claims(issuer.introspection, token)
        if claims.get("patient") != patient:  # the patient itself stays out of the log line
            raise Unauthorized("token's patient (introspection) is not the patient asked for")
        missing = missing_searches(_text(claims.get("scope")), searched)
        if missing:
            raise Unauthorized(f"token's scopes do not allow searching {', '.join(missing)}")
        subject = _text(claims.get("sub")) or _text(claims.get("username"))
        if not subject:
            raise Unauthorized(
                "introspection names no subject (sub or username); the read could not be audited"
            )
        granted = _text(claims.get("scope")).split()
        return f"{issuer.iss}|{subject}", frozenset(t for t in context if allows_read(granted, t))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
