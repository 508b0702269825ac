"""The record writer (service/storage/writer.py) and SQLite as a server store.

Card, feedback and audit records are written in the background, in batches (one transaction, one
executemany per table), on SQLite and on a real PostgreSQL server; a deployed server stopped with SIGTERM
stores every record it answered for; every SQLite connection runs in WAL mode.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import Engine, event, func, select

from service.config import Settings
from service.storage import writer as writer_module
from service.storage.audit import AuditEvent
from service.storage.database import WAIT_SECONDS, make_engine
from service.storage.feedback import CardRecord, FeedbackRecord
from service.storage.records import writer_for
from service.storage.schema import audit, cards, feedback
from service.storage.writer import LINGER
from tests.cds.support import feedback_on, numbered_hook_request
from tests.live import running
from tests.storage.records import audit_event

PATIENT_VIEW = "/cds-services/neckcheck-patient-view"


def card(number: int) -> CardRecord:
    now = dt.datetime.now(dt.UTC).isoformat()
    return CardRecord(str(uuid.uuid4()), "neckcheck-patient-view", "warning", f"rule-{number}", now)


def feedback_about(card_uuid: str) -> FeedbackRecord:
    now = dt.datetime.now(dt.UTC).isoformat()
    return FeedbackRecord(
        str(uuid.uuid4()), "neckcheck-patient-view", card_uuid, "accepted", None, None, False, 1, now, now
    )


def rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (cards, feedback, audit)
        }


@contextmanager
def watched(engine: Engine) -> Iterator[dict[str, Any]]:
    """What the engine sends: each INSERT as (table, executemany, rows), and the number of commits."""
    seen: dict[str, Any] = {"inserts": [], "commits": 0}

    def on_execute(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if statement.startswith("INSERT INTO"):
            seen["inserts"].append((statement.split()[2], many, len(params) if many else 1))

    def on_commit(_conn: Any) -> None:
        seen["commits"] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


@contextmanager
def writes_blocked(url: str) -> Iterator[None]:
    """Another session holds the locks the writer needs, as a busy database would."""
    if url.startswith("sqlite"):
        other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the one write lock of the file (readers go on: WAL)
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("LOCK TABLE cds_card, cds_feedback, audit_event IN EXCLUSIVE MODE")
        yield
    engine.dispose()


def test_a_batch_is_one_transaction_with_one_executemany_per_table(
    make_app: Callable[..., Flask], database_url: str
) -> None:
    app = make_app(database_url=database_url, auto_migrate=True)
    writer, engine = app.extensions["neckcheck.writer"], app.extensions["neckcheck.database"]
    issued = [card(n) for n in range(50)]
    answers = [feedback_about(c.uuid) for c in issued]
    with watched(engine) as seen:
        assert writer.store([*issued, *answers]) is True
    assert seen["inserts"] == [("cds_card", True, 50), ("cds_feedback", True, 50)]
    assert seen["commits"] == 1
    assert rows(engine) == {"cds_card": 50, "cds_feedback": 50, "audit_event": 0}
    assert writer.store([*issued, *answers]) is True  # again (a replay): each record is stored once
    assert rows(engine) == {"cds_card": 50, "cds_feedback": 50, "audit_event": 0}


def test_records_queued_while_the_database_is_busy_go_in_one_batch(
    make_app: Callable[..., Flask], database_url: str
) -> None:
    app = make_app(database_url=database_url, auto_migrate=True)
    writer, engine = app.extensions["neckcheck.writer"], app.extensions["neckcheck.database"]
    with watched(engine) as seen:
        with writes_blocked(database_url):
            start = time.monotonic()
            for n in range(100):
                writer.submit(card(n))
            assert time.monotonic() - start < WAIT_SECONDS / 2  # submitting never waits on the database
            time.sleep(0.3)  # the writer thread is stuck on its first batch; the rest queue up meanwhile
        assert writer.flush()
    assert rows(engine)["cds_card"] == 100 and writer.pending() == 0
    assert all(many or n == 1 for _, many, n in seen["inserts"])
    assert sum(n for _, _, n in seen["inserts"]) == 100
    assert len(seen["inserts"]) <= 2 and seen["commits"] <= 2  # the first record, then all the others


def test_records_that_arrive_during_a_write_wait_one_linger_for_company(
    make_app: Callable[..., Flask], database_url: str
) -> None:
    """Under load the writer must not chase each record with a transaction of its own: a batch written
    at once after the last one found only what arrived during that write, so every batch paid the
    per-transaction cost for a few records (on PostgreSQL: 0.44 ms of writer CPU per hook call, against
    0.18 ms with the linger)."""
    app = make_app(database_url=database_url, auto_migrate=True)
    writer, engine = app.extensions["neckcheck.writer"], app.extensions["neckcheck.database"]
    times: dict[str, list[float]] = {"insert": [], "commit": []}

    def on_execute(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO"):
            times["insert"].append(time.monotonic())

    def on_commit(_conn: Any) -> None:
        times["commit"].append(time.monotonic())

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        with writes_blocked(database_url):
            writer.submit(card(0))
            deadline = time.monotonic() + 5
            while not times["insert"] and time.monotonic() < deadline:
                time.sleep(0.005)  # the first batch has reached the database, which holds it
            for n in range(1, 11):
                writer.submit(card(n))
        deadline = time.monotonic() + 5
        while len(times["commit"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)  # not flush(): a flush rightly cuts the linger short
        assert writer.flush()
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)
    assert rows(engine)["cds_card"] == 11
    assert len(times["insert"]) == 2 and len(times["commit"]) == 2  # the first record, then the ten
    assert times["insert"][1] - times["commit"][0] >= LINGER * 0.99  # sleep never returns early


def test_flush_does_not_wait_for_the_linger(
    make_app: Callable[..., Flask], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that leaves (max_requests, SIGTERM) flushes at exit: it must not sit out the linger
    first, while the other worker serves alone. With a linger of a minute, flush still succeeds."""
    monkeypatch.setattr(writer_module, "LINGER", 60.0)
    app = make_app(database_url=database_url, auto_migrate=True)
    writer, engine = app.extensions["neckcheck.writer"], app.extensions["neckcheck.database"]
    for n in range(5):
        writer.submit(card(n))
    assert writer.flush(timeout=20)
    assert rows(engine)["cds_card"] == 5
    writer.submit(card(5))  # and the writer thread still works after a hurried batch
    assert writer.flush(timeout=20)
    assert rows(engine)["cds_card"] == 6


def test_every_sqlite_connection_is_set_up_as_a_server_store(app: Flask) -> None:
    engine = app.extensions["neckcheck.database"]
    with engine.connect() as one, engine.connect() as two:  # two connections of the pool, both set up
        for conn in (one, two):
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == WAIT_SECONDS * 1000


def test_sigterm_keeps_every_card_and_feedback_record_the_server_answered_for(
    database_url: str, tmp_path: Path
) -> None:
    """The deployed server (gunicorn, two workers), stopped while its writers wait on a busy database.

    Another session holds the database's write lock from the first call until the server has exited. The
    answers come back all the same (the request path does not write), and SIGTERM finds the records still
    queued: a worker that left without flushing would lose them. Each worker's exit waits for its writer,
    which spools them once its bounded wait (WAIT_SECONDS) is over; a later writer stores them.
    """
    calls, url = 10, database_url
    with (
        running(
            tmp_path, NECKCHECK_DATABASE_URL=url, NECKCHECK_AUTO_MIGRATE="1", NECKCHECK_WORKERS="2"
        ) as server,
        writes_blocked(url),
    ):
        for number in range(calls):
            hook = numbered_hook_request("S1-observations.json", number)
            answer = requests.post(server.url + PATIENT_VIEW, json=hook, timeout=10)
            assert answer.status_code == 200, answer.text
            (issued,) = answer.json()["cards"]
            said = requests.post(
                f"{server.url}{PATIENT_VIEW}/feedback", json=feedback_on(issued["uuid"]), timeout=10
            )
            assert said.status_code == 200, said.text
        assert server.stop() == 0  # SIGTERM, as Kubernetes sends it; gunicorn stops its workers
    engine = make_engine(url)
    assert rows(engine) == {"cds_card": 0, "cds_feedback": 0, "audit_event": 0}
    settings = Settings.from_mapping({"database_url": url, "spool_dir": tmp_path / "spool"})
    assert writer_for(settings, engine, background=False).replay() == 3 * calls
    assert rows(engine) == {"cds_card": calls, "cds_feedback": calls, "audit_event": calls}
    log = (tmp_path / "server.log").read_text()
    assert "record(s) spooled" in log and "lost" not in log, log[-2000:]


def test_spooled_lines_of_every_kind_are_replayed_including_audit_lines_from_before_kinds(
    make_app: Callable[..., Flask],
) -> None:
    """A spool written by the previous version holds audit lines without a ``kind``: still audit records."""
    app = make_app()
    writer, engine = app.extensions["neckcheck.writer"], app.extensions["neckcheck.database"]
    issued = card(1)
    old_style = AuditEvent.from_record(asdict(audit_event()))  # a spool line from before "kind"
    legacy = old_style.line().replace('{"kind":"audit",', "{")
    assert '"kind"' not in legacy
    writer.spool.append([issued.line(), feedback_about(issued.uuid).line(), legacy, '{"kind": "nonsense"}'])
    assert writer.replay() == 4
    assert rows(engine) == {"cds_card": 1, "cds_feedback": 1, "audit_event": 1}
    (quarantined,) = writer.spool.quarantine_file.read_text().splitlines()
    assert "nonsense" in quarantined  # a kind no writer knows is set aside, not retried forever
