"""Who may call, and the record of what they asked.

One JWT verifier serves both protected surfaces (CDS Hooks calls and $assess).

CDS Hooks 2.0.1 §Trusting CDS Clients sets the rules for the EHR's token; $assess takes the same kind of
token with its own audience (NECKCHECK_FHIR_AUDIENCE, default <public URL>/fhir) and, optionally, required
scopes. The clinician app's API takes the clinician's SMART access token instead, checked by introspection
or left to a FHIR server marked as checking tokens itself (service/security/app_tokens.py).
NECKCHECK_INSECURE_DEV=1 turns all of it off.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from flask import current_app, g, request
from werkzeug.sansio.utils import get_current_url

from service.assess import Assessment
from service.config import Settings
from service.errors import Unauthorized
from service.security.fhir_servers import FhirServerPolicy
from service.storage.audit import NO_FACTS, AuditEvent


def settings() -> Settings:
    value: Settings = current_app.config["NECKCHECK_SETTINGS"]
    return value


def public_base() -> str:
    """This service's public base URL; the request's host URL is worked out once per request."""
    configured = settings().public_url
    if configured:
        return configured.rstrip("/")
    base: str | None = g.get("host_base")
    if base is None:
        base = g.host_base = _host_base(request.scheme, request.host)
    return base


@lru_cache(maxsize=64)  # a service is reached by a few host names; the Host header is the caller's
def _host_base(scheme: str, host: str) -> str:
    """``request.host_url`` without its slash: werkzeug's URL quoting done once per host, not per request."""
    return get_current_url(scheme, host).rstrip("/")


def record(assessment: Assessment, request_body: Any, channel: str, outputs: list[str] | None = None) -> None:
    """Count the assessment and journal its audit record (never lost, see service/storage/writer.py)."""
    current_app.extensions["neckcheck.metrics"].observe_decision(assessment.decision)
    event = AuditEvent.of(assessment, request_body, channel, g.get("caller") or "unknown", outputs)
    current_app.extensions["neckcheck.writer"].submit(event)


def shadow(assessment: Assessment, request_body: Any, channel: str) -> None:
    """Hand the call to shadow mode, if a candidate table is set (returns at once: service/shadow)."""
    candidate = current_app.extensions.get("neckcheck.shadow")
    if candidate is not None:
        candidate.offer(request_body, assessment, channel)


def record_unassessed(read: Any, channel: str, status: str = NO_FACTS) -> None:
    """Journal the audit record of a read that gave no assessment (``AuditEvent.of_unassessed``): a chart
    was read all the same."""
    table = current_app.extensions["neckcheck.assessor"].table
    caller = g.get("caller") or "unknown"
    event = AuditEvent.of_unassessed(read, channel, caller, f"{table.id} {table.version}", status)
    current_app.extensions["neckcheck.writer"].submit(event)


def bearer_token() -> str | None:
    """The request's ``Authorization: Bearer`` token (RFC 6750 §2.1, scheme case-insensitive), if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_app_token(
    token: str | None, fhir_server: str, patient: str, searched: Iterable[str], context: Iterable[str] = ()
) -> frozenset[str]:
    """Set ``g.caller`` for a clinician app turn that will search ``searched`` types of ``patient``'s chart
    on ``fhir_server`` with ``token``, or refuse it (401, or 412 for a server the app may not read) before
    anything is read; answer which ``context`` types (the Patient, only shown) the token may also read.
    In insecure dev the token is optional and not verified (loopback servers only)."""
    if settings().insecure_dev:
        g.caller = "dev"
        return frozenset(context)
    tokens = current_app.extensions["neckcheck.app_tokens"]
    g.caller, readable = tokens.caller(token, fhir_server, patient, searched, context)
    return frozenset(readable)


def require_token(audience: str, scopes: frozenset[str] = frozenset()) -> None:
    """Set ``g.caller`` ("iss|sub", or "dev") and ``g.issuer`` or raise Unauthorized (a bare 401)."""
    if settings().insecure_dev:
        g.caller = "dev"
        g.issuer = None
        return
    verifier = current_app.extensions["neckcheck.jwt"]
    if verifier is None:
        raise Unauthorized("no trusted issuers are configured (NECKCHECK_TRUSTED_ISSUERS_FILE)")
    claims = verifier.verify(request.headers.get("Authorization"), audience)
    granted = set(str(claims.get("scope", "")).split())
    if not scopes <= granted:
        raise Unauthorized(f"token lacks scopes {sorted(scopes - granted)}")
    g.caller = f"{claims['iss']}|{claims['sub']}"
    g.issuer = claims["iss"]


def fhir_server_policy() -> FhirServerPolicy:
    """The FHIR servers this request may make us contact: its issuer's list, or loopback in insecure dev.

    Only called after ``require_token`` accepted the request, so ``g.issuer`` is a verified, trusted issuer.
    """
    if settings().insecure_dev:
        return FhirServerPolicy.insecure_dev()
    policy: FhirServerPolicy = current_app.extensions["neckcheck.jwt"].fhir_server_policy(g.issuer)
    return policy
