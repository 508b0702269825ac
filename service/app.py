"""The app factory: the only place that wires settings, the engine, blueprints and error handlers."""

from __future__ import annotations

import datetime as dt
import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import requests
from flask import Flask
from sqlalchemy import Engine

from service.app_ui import app as clinician_app
from service.app_ui import home
from service.assess import Assessor
from service.config import Settings
from service.errors import ConfigError
from service.http import cds, docs, errors, fhir, observability, ops
from service.logs import configure as configure_logs
from service.metrics import Metrics
from service.payloads.cds_hooks import compile_validators
from service.reader.client import FhirClient, build_session
from service.reader.searches import prefetch_templates
from service.rules.versions import published, resolve
from service.security.app_tokens import AppTokens
from service.security.introspection import Introspector
from service.security.issuers import TrustedIssuer, load_trusted_issuers
from service.security.jwt_verifier import JwtVerifier
from service.shadow import Shadow, ShadowMetrics, Tables
from service.storage.database import make_engine, upgrade
from service.storage.feedback import FeedbackStore
from service.storage.records import writer_for
from service.storage.replay import ReplayStore
from service.storage.writer import RecordWriter

log = logging.getLogger("neckcheck")


def _version() -> str:
    try:
        return version("neckcheck")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(config: dict[str, Any] | Settings | None = None) -> Flask:
    """Build the app; with no config, settings come from ``NECKCHECK_*`` environment variables."""
    if isinstance(config, Settings):
        settings = config
    elif config is None:
        settings = Settings.from_env()
    else:
        settings = Settings.from_mapping(config)
    configure_logs(settings.log_level)
    app = Flask("neckcheck")
    engine = make_engine(settings.database_url)
    _migrate(engine, settings)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        NECKCHECK_VERSION=_version(),
        NECKCHECK_SETTINGS=settings,
    )
    metrics = Metrics()
    writer = writer_for(settings, engine, metrics)  # audit, card and feedback records, off the request path
    assessor = Assessor.load(settings.rules_file, settings.codes_file, settings.max_entries)
    if assessor.table.status != "active":  # named by NECKCHECK_RULES_FILE: run, but not quietly
        log.warning(
            "running rule table %s %s, whose status is %s (NECKCHECK_RULES_FILE)",
            assessor.table.id,
            assessor.table.version,
            assessor.table.status,
        )
    shadow = _shadow(settings, assessor, writer, metrics)
    compile_validators()
    session = build_session()  # one connection pool for the FHIR servers and the introspection endpoints
    issuers = _issuers(settings)
    app.extensions.update(
        {
            "neckcheck.assessor": assessor,
            # every version GET .../PlanDefinition/<id>?version= can name (the running one among them)
            "neckcheck.rule_tables": published(assessor.table),
            # what no request changes, built once per process rather than per hook call
            "neckcheck.prefetch_templates": prefetch_templates(assessor.book),
            "neckcheck.fhir_client": FhirClient(
                session,
                connect_timeout=settings.fhir_connect_timeout,
                read_timeout=settings.fhir_read_timeout,
                retries=settings.fhir_retries,
                max_pages=settings.fhir_max_pages,
                budget=settings.cds_fhir_deadline,
            ),
            "neckcheck.jwt": _verifier(issuers, ReplayStore(engine)),
            "neckcheck.app_tokens": _app_tokens(issuers, session, settings),
            "neckcheck.database": engine,
            "neckcheck.feedback": FeedbackStore(engine, writer),
            "neckcheck.writer": writer,
            "neckcheck.metrics": metrics,
            "neckcheck.shadow": shadow,  # None unless NECKCHECK_SHADOW_RULES names a candidate table
            "neckcheck.clock": lambda: dt.datetime.now(dt.UTC),  # tests replace it to fix asOf
        }
    )
    errors.register(app)
    observability.register(app)
    app.url_map.converters["fhir_id"] = fhir.FhirIdConverter
    app.register_blueprint(fhir.bp)
    app.register_blueprint(cds.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(clinician_app.bp)
    return app


def _migrate(engine: Engine, settings: Settings) -> None:
    """SQLite (the embedded default) always; another database only with NECKCHECK_AUTO_MIGRATE=1."""
    sqlite = settings.database_url.startswith("sqlite")
    if not (sqlite or settings.auto_migrate):
        return
    try:
        upgrade(engine)
    except ConfigError as exc:
        if sqlite:
            raise
        # a database that is down at start: serve anyway; /readyz says why and assessments still answer
        log.error("database migration failed (%s); /readyz will report it", exc)


def _shadow(settings: Settings, live: Assessor, writer: RecordWriter, metrics: Metrics) -> Shadow | None:
    """Shadow mode's candidate table, loaded and checked like the live one (a bad one stops the start)."""
    if settings.shadow_rules is None:
        return None
    tables = Tables(resolve(settings.shadow_rules), settings.codes_file, settings.max_entries)
    candidate = Assessor.load(tables.rules, tables.codes, tables.max_entries)  # checked here, run in a child
    log.info(
        "shadow mode: every $assess and hook call is also evaluated under %s %s (live: %s %s)",
        candidate.table.id,
        candidate.table.version,
        live.table.id,
        live.table.version,
    )
    return Shadow(tables, writer, ShadowMetrics(metrics.registry), settings.shadow_queue)


def _issuers(settings: Settings) -> dict[str, TrustedIssuer] | None:
    """The trusted issuers; None in insecure dev (nothing is checked), none without the file."""
    if settings.insecure_dev:
        log.warning(
            "!!! NECKCHECK_INSECURE_DEV=1: $assess and CDS Hooks requests are NOT authenticated, and the "
            "clinician app's tokens are NOT verified. Development only: never run like this with real "
            "patient data. !!!"
        )
        return None
    if settings.trusted_issuers_file is None:
        log.warning(
            "no NECKCHECK_TRUSTED_ISSUERS_FILE: every $assess and CDS Hooks call will be refused (401), "
            "and the clinician app can read no FHIR server"
        )
        return {}
    return load_trusted_issuers(settings.trusted_issuers_file)


def _verifier(issuers: dict[str, TrustedIssuer] | None, replays: ReplayStore) -> JwtVerifier | None:
    return JwtVerifier(issuers, shared_replay=replays.first_use) if issuers else None


def _app_tokens(
    issuers: dict[str, TrustedIssuer] | None, session: requests.Session, settings: Settings
) -> AppTokens | None:
    """None in insecure dev only: without a trusted-issuers file the app may read no FHIR server."""
    if issuers is None:
        return None
    return AppTokens(issuers, Introspector(session, cache_seconds=settings.app_token_cache_seconds))
