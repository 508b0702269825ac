"""The trusted issuers as the service uses them: the file read, its key sets and secrets loaded and checked.

The file's shape is ``service.payloads.trusted_issuers``; this module reads the files it names (JWK Sets,
the introspection client secret), each relative to the trusted-issuers file unless absolute. Any problem
raises ``ConfigError`` naming the file and entry, so the service refuses to start rather than rejecting
every request later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt

from service.errors import ConfigError
from service.fhir_base import FhirBase
from service.payloads.trusted_issuers import read_trusted_issuers
from service.security.introspection import IntrospectionEndpoint

_PUBLIC_KEY_TYPES: Final = frozenset({"EC", "RSA"})
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


@dataclass(frozen=True)
class TrustedIssuer:
    """One EHR: where the public keys of its CDS Hooks JWTs come from, the FHIR servers its calls (and the
    clinician app) may make us contact, and how the app's tokens from it are checked."""

    iss: str
    jwks: dict[str, Any] | None = None
    jku_allowlist: tuple[str, ...] = ()
    fhir_servers: frozenset[FhirBase] = frozenset()  # the fhirServer base URLs its hook calls may name
    introspection: IntrospectionEndpoint | None = None  # RFC 7662, for the clinician app's tokens
    # of fhir_servers, those the operator says check the app's tokens themselves (``checksTokens``)
    self_checking: frozenset[FhirBase] = frozenset()


def load_trusted_issuers(path: Path) -> dict[str, TrustedIssuer]:
    """The issuers of a trusted-issuers file, with their JWK Sets and introspection credentials."""
    entries = read_trusted_issuers(_read_json(path, "trusted issuers file"), path)
    issuers: dict[str, TrustedIssuer] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: issuers[{index}]"
        jwks = None
        if entry.get("jwksFile") is not None:
            jwks_path = path.parent / entry["jwksFile"]  # an absolute jwksFile replaces the folder
            jwks = _read_json(jwks_path, f"{where}: jwksFile")
            _check_jwks(jwks, f"{where}: jwksFile {jwks_path}")
        listed = entry["fhirServers"]
        issuers[entry["iss"]] = TrustedIssuer(
            iss=entry["iss"],
            jwks=jwks,
            jku_allowlist=tuple(entry["jkuAllowlist"]),
            fhir_servers=frozenset(base for base, _ in listed),
            introspection=_introspection(entry.get("introspection"), path, where),
            self_checking=frozenset(base for base, checks in listed if checks),
        )
    return issuers


def _introspection(config: dict[str, Any] | None, path: Path, where: str) -> IntrospectionEndpoint | None:
    if config is None:
        return None
    secret_path = path.parent / config["clientSecretFile"]
    what = f"{where}: introspection clientSecretFile {secret_path}"
    try:
        secret = secret_path.read_text(encoding="utf-8").rstrip("\r\n")  # as `echo secret > file` writes it
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{what}: cannot be read ({reason})") from exc
    if not secret:
        raise ConfigError(f"{what}: is empty")
    return IntrospectionEndpoint(config["endpoint"], config["clientId"], secret, config["authMethod"])


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ConfigError(f"{what} {path}: not valid JSON ({exc})") from exc


def _check_jwks(jwks: Any, where: str) -> None:
    """A configured key set must be public signing keys only, each usable and with a distinct ``kid``."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ConfigError(f"{where}: expected a JWK Set with a non-empty 'keys' list")
    kids: set[str] = set()
    for index, key in enumerate(keys):
        at = f"{where}: keys[{index}]"
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str) or not key["kid"]:
            raise ConfigError(f"{at}: each key needs a 'kid'")
        if key["kid"] in kids:
            raise ConfigError(f"{at}: duplicate kid {key['kid']!r}")
        kids.add(key["kid"])
        if key.get("kty") not in _PUBLIC_KEY_TYPES:
            raise ConfigError(f"{at}: kty must be one of {sorted(_PUBLIC_KEY_TYPES)}")
        if _PRIVATE_MEMBERS & set(key):
            raise ConfigError(f"{at}: holds private key material; configure the public key only")
        try:
            jwt.PyJWK(key)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{at}: not a usable key ({exc})") from exc
