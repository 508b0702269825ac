"""The database: one SQLAlchemy engine per app, migrations by Alembic, a bounded wait on every call.

SQLite (the embedded default) is migrated at start, so ``make run`` and ``create_app()`` are ready at once.
Any other database is migrated at start only with NECKCHECK_AUTO_MIGRATE=1; otherwise ``neckcheck db
upgrade`` does it, and /readyz reports a schema that is behind. Processes that start together (gunicorn
workers without --preload, replicas, a CLI beside the service) take turns: one migrates, the others wait
for it and then find nothing to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from service.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
WAIT_SECONDS = 2  # connect and statement timeout: a database outage must not hold an answer long
# How long a starting process waits for another's migration. Its own is a few statements; the wait is for
# several processes queueing on a loaded machine, each taking the lock in turn.
MIGRATION_WAIT_SECONDS = 60


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored DateTime read back: SQLite gives it without its zone, PostgreSQL with it; both were UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def make_engine(url: str, wait_seconds: float = WAIT_SECONDS) -> Engine:
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        options["connect_args"] = {
            "connect_timeout": WAIT_SECONDS,
            "options": f"-c statement_timeout={WAIT_SECONDS * 1000}",
        }
        options["pool_timeout"] = WAIT_SECONDS
    elif url.startswith("sqlite"):
        options["connect_args"] = {"timeout": wait_seconds}
    try:
        engine = create_engine(url, **options)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise ConfigError(f"NECKCHECK_DATABASE_URL: cannot use the database: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_as_a_server_store(wait_seconds))
    return engine


# SQLite as a server store (https://sqlite.org/wal.html, https://sqlite.org/pragma.html), set on every
# connection: gunicorn's workers are processes writing one file. WAL lets readers (/readyz, the jti check,
# reports) go on while a worker's writer thread commits a batch, and makes a commit an append to the log;
# synchronous=NORMAL then syncs at checkpoints instead of at every commit: the file is never corrupted,
# but a power cut can lose the last commits (a crash of the process cannot). busy_timeout: a writer waits
# this long for another's lock before the error that sends its records to the spool.
def _sqlite_as_a_server_store(wait_seconds: float) -> Callable[[Any, Any], None]:
    pragmas = {
        "busy_timeout": str(int(wait_seconds * 1000)),  # first: the switch to WAL may wait for a lock
        "journal_mode": "wal",
        "synchronous": "1",  # NORMAL
    }

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for name, value in pragmas.items():
                cursor.execute(f"PRAGMA {name}={value}")
        finally:
            cursor.close()

    return on_connect


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent, and safe when processes start together).

    A failure is a ConfigError of one line naming the database.

    A schema already at head is left alone without taking any lock, so a start beside a busy service does
    not wait for its writers. Otherwise the migration runs under the database's own lock, and Alembic reads
    the revision again inside it: whoever waited finds the work done.
    """
    migrating = _migration_engine(engine)
    config = _config()
    try:
        if current_revision(migrating) == head_revision():
            return
        with migrating.begin() as connection:
            _lock_for_migration(connection)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise ConfigError(f"NECKCHECK_DATABASE_URL: cannot migrate {_name(engine)}: {_reason(exc)}") from exc
    finally:
        if migrating is not engine:
            migrating.dispose()


def _name(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's own words, on one line (SQLAlchemy's text adds the statement and a link)."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return " ".join(str(cause).split()) or type(cause).__name__


def _migration_engine(engine: Engine) -> Engine:
    """SQLite: connections of their own that wait long for a lock (a request's connections wait 2 s).

    Processes opening a new file together also queue to switch it to WAL, which needs the lock too.
    """
    if engine.dialect.name != "sqlite":
        return engine
    return make_engine(engine.url.render_as_string(hide_password=False), MIGRATION_WAIT_SECONDS)


def _lock_for_migration(connection: Connection) -> None:
    """One migrating process at a time, held until the migration's transaction ends.

    PostgreSQL: a transaction-level advisory lock. SQLite: ``BEGIN EXCLUSIVE`` takes the database's write
    lock at once (https://sqlite.org/lang_transaction.html); the driver leaves DDL outside a transaction
    unless one is open, which is how two processes each created the same table. The driver's commit and
    rollback end the transaction begun here.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(726345)"))
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN EXCLUSIVE")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class DatabaseState:
    reachable: bool
    problem: str | None = None  # None: reachable, with a current schema

    @property
    def ok(self) -> bool:
        return self.problem is None


def readiness(engine: Engine) -> DatabaseState:
    """Whether the database answers, and with the current schema (for /readyz)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        return DatabaseState(reachable=False, problem=f"database unreachable ({type(exc).__name__})")
    if current != head_revision():
        return DatabaseState(
            reachable=True,
            problem=f"database schema at {current}, expected {head_revision()}: run `neckcheck db upgrade`",
        )
    return DatabaseState(reachable=True)


def refused(exc: SQLAlchemyError) -> bool:
    """True when the database refused the data itself, so the same row can never be stored by retrying.

    PEP 249 sorts driver errors: DataError (a value the column cannot hold: a NUL byte in PostgreSQL text,
    a string longer than its column) and IntegrityError (a constraint) are about the row. OperationalError,
    InterfaceError, a timeout or a dropped connection are about the database, and so are ProgrammingError
    and InternalError here: a missing table is the schema's fault, not the row's, and must not send every
    record to quarantine. A StatementError that is not a driver error was raised while binding the row's
    values, before anything reached the database.
    """
    if isinstance(exc, DBAPIError):
        return not exc.connection_invalidated and isinstance(exc, DataError | IntegrityError)
    return isinstance(exc, StatementError)
