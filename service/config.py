"""Settings: defaults, then ``NECKCHECK_*`` environment variables (or an explicit dict), validated once.

A bad value stops the start with a message naming the variable; nothing reads the environment later.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from service.codebook import DEFAULT_CODES
from service.errors import ConfigError

PREFIX = "NECKCHECK_"
# Read by service/gunicorn.conf.py (the server process), not by the app.
SERVER_VARIABLES = frozenset(
    PREFIX + name
    for name in (
        "BIND",
        "WORKERS",
        "THREADS",
        "TIMEOUT",
        "GRACEFUL_TIMEOUT",
        "MAX_REQUESTS",
        "MAX_REQUESTS_JITTER",
    )
)


@dataclass(frozen=True)
class Settings:
    max_body_bytes: int = 1024 * 1024
    max_entries: int = 1000
    # None: the newest active packaged table in effect at start-up (service/rules/versions.py)
    rules_file: Path | None = None
    # shadow mode: a candidate table (a file, or a packaged version) that every $assess and hook call is
    # also evaluated under, after its answer, from a queue of this many calls per worker (shed when full)
    shadow_rules: str | None = None
    shadow_queue: int = 16
    codes_file: Path = DEFAULT_CODES
    log_level: str = "INFO"
    # CDS Hooks
    insecure_dev: bool = False  # True: no JWT checks at all (development only; logged loudly)
    trusted_issuers_file: Path | None = None
    # e.g. https://cds.example-hospital.org; required with trusted issuers; else the request's host URL
    public_url: str | None = None
    cors_origins: str = ""  # comma-separated origins allowed to call the CDS Hooks endpoints from a browser
    fhir_audience: str | None = None  # JWT aud for $assess; default: <public URL>/fhir
    required_scopes: str = ""  # space-separated scopes a $assess token must carry (none by default)
    database_url: str = "sqlite:///neckcheck.db"
    auto_migrate: bool = False  # migrate a non-SQLite database at start (SQLite is always migrated)
    spool_dir: Path = (
        Path(tempfile.gettempdir()) / "neckcheck-spool"
    )  # audit, card and feedback records kept while the DB is down
    # /readyz turns 503 when the spool reaches this size (kept below the Kubernetes emptyDir sizeLimit)
    spool_max_bytes: int = 512 * 1024 * 1024
    # each record is journaled (one write) beside the spool before its answer leaves, and the journal is
    # fdatasync'd this often: what a power cut can lose (0: every record synced before its answer)
    journal_sync_ms: int = 100
    fhir_connect_timeout: float = 1.0
    fhir_read_timeout: float = 3.0
    fhir_retries: int = 1
    fhir_max_pages: int = 5
    cds_fhir_deadline: float = 2.0  # seconds for all FHIR-server reads of one hook call, retries and pages
    # the clinician app (/app/): its OAuth 2.0 client id as registered with the EHR, and the EHR's origins
    # beyond its FHIR servers (an authorization server elsewhere, a page that frames the app), space-separated
    app_client_id: str = "neckcheck"
    app_ehr_origins: str = ""
    # SMART App Launch 2.x scopes (v2 syntax): read what the rules use and the Patient (name, sex and age,
    # shown only; without it the app says "not on record"), create what "save to chart" writes; an EHR that
    # only knows v1 scopes gets e.g. "patient/Observation.read patient/RiskAssessment.write"
    app_scopes: str = (
        "launch openid fhirUser patient/Patient.r patient/Observation.rs patient/QuestionnaireResponse.cruds "
        "patient/RiskAssessment.c patient/ServiceRequest.c"
    )
    # seconds an introspected app token is taken without asking again (never past its exp); 0: every turn
    app_token_cache_seconds: int = 30
    app_demo: bool = False  # /app/demo and its sample patients; `make run` turns it on

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(o.strip() for o in self.cors_origins.split(",") if o.strip())

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build from lower-case keys (``max_entries``) or env-style keys (``NECKCHECK_MAX_ENTRIES``)."""
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            name = key[len(PREFIX) :].lower() if key.startswith(PREFIX) else key.lower()
            if name not in known:
                if key.startswith(PREFIX):
                    raise ConfigError(f"{key}: unknown setting (known: {', '.join(_env(n) for n in known)})")
                continue
            kwargs[name] = _convert(name, raw, known[name].type)
        settings = cls(**kwargs)
        settings.check()
        return settings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls.from_mapping(
            {k: v for k, v in env.items() if k.startswith(PREFIX) and k not in SERVER_VARIABLES}
        )

    def check(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigError(f"{_env('max_body_bytes')} must be at least 1024, got {self.max_body_bytes}")
        if self.max_entries < 1:
            raise ConfigError(f"{_env('max_entries')} must be at least 1, got {self.max_entries}")
        if self.spool_max_bytes < 4096:
            raise ConfigError(f"{_env('spool_max_bytes')} must be at least 4096, got {self.spool_max_bytes}")
        if not 1 <= self.shadow_queue <= 1000:
            raise ConfigError(f"{_env('shadow_queue')} must be 1-1000 calls, got {self.shadow_queue}")
        if not 0 <= self.journal_sync_ms <= 10_000:
            raise ConfigError(f"{_env('journal_sync_ms')} must be 0-10000 ms, got {self.journal_sync_ms}")
        for name in ("rules_file", "codes_file", "trusted_issuers_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{_env(name)}: no such file: {path}")
        for name in ("fhir_connect_timeout", "fhir_read_timeout", "cds_fhir_deadline"):
            if not 0 < getattr(self, name) <= 60:
                raise ConfigError(f"{_env(name)} must be between 0 and 60 seconds")
        if not 0 <= self.fhir_retries <= 5 or not 1 <= self.fhir_max_pages <= 100:
            raise ConfigError(f"{_env('fhir_retries')} must be 0-5 and {_env('fhir_max_pages')} 1-100")
        for origin in self.app_ehr_origins.split():
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
                raise ConfigError(
                    f"{_env('app_ehr_origins')}: {origin[:80]!r} is not an origin (scheme://host[:port])"
                )
        if not 0 <= self.app_token_cache_seconds <= 300:
            raise ConfigError(f"{_env('app_token_cache_seconds')} must be between 0 and 300 seconds")
        if "launch" not in self.app_scopes.split():
            raise ConfigError(f"{_env('app_scopes')} must include 'launch' (the EHR launch context)")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError(f"{_env('public_url')} must be an http(s) URL")
        if self.trusted_issuers_file is not None and not self.insecure_dev and self.public_url is None:
            # Without it the JWT audience would follow the request's Host header, so a token a trusted EHR
            # minted for another CDS service would pass here when sent with that service's host name.
            raise ConfigError(
                f"{_env('public_url')} must be set when {_env('trusted_issuers_file')} is: it is the JWT "
                "audience, which must not follow the request's Host header"
            )
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"{_env('log_level')} must be DEBUG, INFO, WARNING or ERROR")


def _env(name: str) -> str:
    return PREFIX + name.upper()


def _convert(name: str, raw: Any, kind: Any) -> Any:
    kind = str(kind).replace(" | None", "")
    if isinstance(raw, bool | int | float | Path) and kind in ("bool", "int", "float", "Path"):
        return raw
    text = str(raw)
    if kind == "bool":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{_env(name)} must be 1 or 0, got {text[:40]!r}")
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise ConfigError(f"{_env(name)} must be a number, got {text[:40]!r}") from None
    if kind == "Path":
        return Path(text)
    return text
