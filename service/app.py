"""The app factory: the only place that wires settings, the engine, blueprints and error handlers."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Flask

from service.assess import Assessor
from service.config import Settings
from service.http import errors, fhir, ops


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
    logging.getLogger("neckcheck").setLevel(settings.log_level.upper())
    app = Flask("neckcheck")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        NECKCHECK_VERSION=_version(),
        NECKCHECK_SETTINGS=settings,
    )
    app.extensions["neckcheck.assessor"] = Assessor.load(
        settings.rules_file, settings.codes_file, settings.max_entries
    )
    errors.register(app)
    app.register_blueprint(fhir.bp)
    app.register_blueprint(ops.bp)
    return app
