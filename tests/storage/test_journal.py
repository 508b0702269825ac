"""The journal (service/storage/journal.py): a record is on file before submit() returns, and the files
of processes that died (killed while journaling, or while replaying) are stored once, by a real replay.

The dead processes here are real ones, killed with SIGKILL; the deployed server's version of the same
is tests/storage/test_sigkill.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from service.config import Settings
from service.storage import writer as writer_module
from service.storage.database import make_engine, upgrade
from service.storage.records import spool_for, writer_for
from service.storage.schema import audit
from service.storage.spool import Spool
from tests.live import ROOT
from tests.storage.records import audit_event
from tests.storage.test_audit import assess

# A process that journals ``count`` records (its writer lingers a minute, so it stores none of them),
# says so, and waits to be killed; with ``hang_in_replay`` it instead replays the spool and hangs after
# its first chunk is stored.
CHILD = textwrap.dedent(
    """
    import sys, time
    from service.config import Settings
    from service.storage import spool, writer
    from service.storage.database import make_engine
    from service.storage.records import writer_for
    from tests.storage.records import audit_event

    url, folder, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    writer.LINGER = 60.0
    spool.CHUNK = 5
    settings = Settings.from_mapping({"database_url": url, "spool_dir": folder})
    engine = make_engine(url)
    if mode == "journal":
        records = writer_for(settings, engine)
        for _ in range(count):
            records.submit(audit_event())
    else:
        records = writer_for(settings, engine, background=False)
        store = records._write

        def store_then_hang(lines):
            store(lines)
            print("ready", flush=True)
            time.sleep(120)

        records._write = store_then_hang
        records.replay()
    print("ready", flush=True)
    time.sleep(120)
    """
)


def child(url: str, folder: Path, count: int, mode: str) -> subprocess.Popen[str]:
    """The child process, once it has said it is ready."""
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(folder), str(count), mode],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()


def audit_rows(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count: int = conn.execute(select(func.count()).select_from(audit)).scalar_one()
    engine.dispose()
    return count


@pytest.fixture()
def store(tmp_path: Path) -> tuple[str, Settings]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(make_engine(url))
    return url, Settings.from_mapping({"database_url": url, "spool_dir": tmp_path / "spool"})


def test_a_record_is_in_the_journal_when_submit_returns_and_leaves_it_once_stored(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "LINGER", 60.0)
    app = make_app()
    writer = app.extensions["neckcheck.writer"]
    record = audit_event()
    writer.submit(record)
    (segment,) = writer.spool.journal_dir.glob("*.ndjson")
    assert segment.read_text() == record.line() + "\n"  # on file (in the kernel) before the answer
    assert writer.flush(timeout=20)
    assert not segment.exists()
    with app.extensions["neckcheck.database"].connect() as conn:
        assert conn.execute(select(audit.c.id)).scalars().all() == [record.id]


def test_the_journal_of_a_killed_process_is_stored_once_and_a_live_ones_is_left_alone(
    store: tuple[str, Settings],
) -> None:
    url, settings = store
    killed = child(url, settings.spool_dir, 30, "journal")
    alive = child(url, settings.spool_dir, 7, "journal")
    kill(killed)
    writer = writer_for(settings, make_engine(url), background=False)
    assert writer.replay() == 30  # the killed process's records, adopted and stored
    assert writer.replay() == 0 and audit_rows(url) == 30  # once
    assert len(list(spool_for(settings).journal_dir.glob("*.ndjson"))) == 1  # the live process's
    kill(alive)
    assert writer.replay() == 7
    assert audit_rows(url) == 37
    assert not [p for p in settings.spool_dir.rglob("*") if p.is_file()]


def test_a_replay_killed_half_way_is_finished_by_the_next_and_stores_each_record_once(
    store: tuple[str, Settings],
) -> None:
    url, settings = store
    spool = spool_for(settings)
    spool.append([audit_event().line() for _ in range(23)])
    replaying = child(url, settings.spool_dir, 0, "replay")  # stored its first chunk of 5, then hangs
    assert audit_rows(url) == 5
    kill(replaying)
    (claimed,) = spool.directory.glob("*.replaying-*")  # the dead replay's claim
    writer = writer_for(settings, make_engine(url), background=False)
    assert writer.replay() == 23  # given back whole; the five stored already are not stored again
    assert audit_rows(url) == 23 and not claimed.exists() and spool.pending() == 0


def test_a_claim_named_after_a_live_pid_is_taken_back_when_nobody_holds_it(tmp_path: Path) -> None:
    """After a restart a pid comes back (in a container, the workers' pids repeat): a claim left by a
    replay that died is recognised by its lock, which nobody holds, not by a pid that lives again."""
    spool = Spool(tmp_path, 1 << 20)
    (tmp_path / f"audit-1.replaying-{os.getpid()}").write_text("one\ntwo\n")  # the old naming, our pid
    taken: list[str] = []
    assert spool.replay(taken.extend) == 2
    assert taken == ["one", "two"] and not list(tmp_path.iterdir())


@pytest.mark.parametrize("sync_ms", [0, 50])
def test_the_journal_is_on_disk_within_the_sync_interval(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, sync_ms: int
) -> None:
    """What a power cut can lose is bounded: each line is fdatasync'd within NECKCHECK_JOURNAL_SYNC_MS of
    its write (at 0, before submit returns, so before the answer leaves)."""
    monkeypatch.setattr(writer_module, "LINGER", 60.0)  # not stored meanwhile: only the journal has it
    synced: list[float] = []
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        real(fd)
        synced.append(time.monotonic())

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    writer = make_app(journal_sync_ms=sync_ms).extensions["neckcheck.writer"]
    for _ in range(3):
        written = time.monotonic()
        writer.submit(audit_event())
        if sync_ms == 0:
            assert synced and synced[-1] >= written
        time.sleep(0.2)
        assert synced and written <= synced[-1] <= written + sync_ms / 1000 + 0.1
    count = len(synced)
    time.sleep(0.2)
    assert len(synced) == count  # nothing new: no sync


def test_a_line_its_process_died_writing_is_dropped_not_quarantined(store: tuple[str, Settings]) -> None:
    """SIGKILL during the write(2) of a line can leave part of it: that answer never left, so the part is
    no record (the journal writes nothing after a failed or short write)."""
    url, settings = store
    spool = spool_for(settings)
    spool.journal_dir.mkdir(parents=True)
    whole = [audit_event().line() for _ in range(2)]
    torn = audit_event().line()[:57]
    (spool.journal_dir / "4242-deadbeef-1.ndjson").write_text("".join(f"{x}\n" for x in whole) + torn)
    writer = writer_for(settings, make_engine(url), background=False)
    assert writer.replay() == 2
    assert audit_rows(url) == 2 and not spool.quarantine_file.exists()


def test_a_journal_that_cannot_be_written_does_not_stop_answers(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    """A disk that refuses the journal (full, read-only) leaves the record in memory only: the answer still
    leaves and the record is stored, and the metric says how many records a kill would have lost."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    app = make_app(spool_dir=blocker / "spool")
    assert assess(app) == 200
    assert app.extensions["neckcheck.writer"].flush()
    with app.extensions["neckcheck.database"].connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit)).scalar_one() == 1
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert "neckcheck_audit_unjournaled_total 1.0" in metrics
