"""The database: one SQLAlchemy engine per app, migrations by Alembic, a bounded wait on every call.

SQLite (the embedded default) is migrated at start, so ``make run`` and ``create_app()`` are ready at once.
Any other database is migrated at start only with NECKCHECK_AUTO_MIGRATE=1; otherwise ``neckcheck db
upgrade`` does it, and /readyz reports a schema that is behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from service.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
WAIT_SECONDS = 2  # connect and statement timeout: a database outage must not hold an answer long


def make_engine(url: str) -> Engine:
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        options["connect_args"] = {
            "connect_timeout": WAIT_SECONDS,
            "options": f"-c statement_timeout={WAIT_SECONDS * 1000}",
        }
        options["pool_timeout"] = WAIT_SECONDS
    elif url.startswith("sqlite"):
        options["connect_args"] = {"timeout": WAIT_SECONDS}
    try:
        return create_engine(url, **options)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise ConfigError(f"NECKCHECK_DATABASE_URL: cannot use the database: {exc}") from exc


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    config = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # replicas starting together: one migrates, the others wait and then find nothing to do
            connection.execute(text("SELECT pg_advisory_xact_lock(726345)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def readiness(engine: Engine) -> str | None:
    """None when the database answers and its schema is current; else why not (for /readyz)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        return f"database unreachable ({type(exc).__name__})"
    if current != head_revision():
        return f"database schema at {current}, expected {head_revision()}: run `neckcheck db upgrade`"
    return None
