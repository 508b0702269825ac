"""Who may call: one JWT verifier for both protected surfaces (CDS Hooks calls and $assess).

CDS Hooks 2.0.1 §Trusting CDS Clients sets the rules for the EHR's token; $assess takes the same kind of
token with its own audience (NECKCHECK_FHIR_AUDIENCE, default <public URL>/fhir) and, optionally, required
scopes. NECKCHECK_INSECURE_DEV=1 turns all of it off.
"""

from __future__ import annotations

from flask import current_app, g, request

from service.config import Settings
from service.errors import Unauthorized


def settings() -> Settings:
    value: Settings = current_app.config["NECKCHECK_SETTINGS"]
    return value


def public_base() -> str:
    return (settings().public_url or request.host_url).rstrip("/")


def require_token(audience: str, scopes: frozenset[str] = frozenset()) -> None:
    """Set ``g.caller`` ("iss|sub", or "dev") or raise Unauthorized (answered as a bare 401)."""
    if settings().insecure_dev:
        g.caller = "dev"
        return
    verifier = current_app.extensions["neckcheck.jwt"]
    if verifier is None:
        raise Unauthorized("no trusted issuers are configured (NECKCHECK_TRUSTED_ISSUERS_FILE)")
    claims = verifier.verify(request.headers.get("Authorization"), audience)
    granted = set(str(claims.get("scope", "")).split())
    if not scopes <= granted:
        raise Unauthorized(f"token lacks scopes {sorted(scopes - granted)}")
    g.caller = f"{claims.get('iss')}|{claims.get('sub', '')}"
