"""The record writer: every row an answer leaves behind (audit events, CDS Hooks cards and feedback) is
stored from here, in the background, so no answer waits on the database.

A record is first appended to this process's journal (service/storage/journal.py: one write(2), so it
survives a SIGKILL of the process from the moment its answer can leave), then handed to a writer thread
(one per process: threads do not survive a fork), which writes records in batches: one transaction per
batch, one executemany per table, with a bounded wait. When the database cannot take them (an outage: a
lost connection, a timeout), they are appended, fsync'd, to the spool (service/storage/spool.py) instead,
and the writer replays the spool before its next write, or when /readyz finds the database back. Records
carry their own uuid, so a replayed record is inserted once even if a replay is interrupted half way, and
a card issued twice (card ids are deterministic) is one row.

A record the database refuses for good (a value it cannot hold) is not retried: the batch is retried row
by row to find it, it goes to the spool's quarantine file, and the other records are stored.

Records still queued are written when the process exits normally (SIGTERM to a gunicorn worker included:
it leaves through sys.exit, so atexit runs ``flush``). After a hard kill they are in its journal, which
the next replay of any process (every write starts with one; a new worker's writer starts with one)
adopts into the spool and stores.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import threading
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import orjson
from sqlalchemy import Connection, DateTime, Engine, Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from service.errors import StorageUnavailable
from service.metrics import Metrics
from service.storage.database import refused
from service.storage.journal import Journal
from service.storage.spool import Spool

log = logging.getLogger("neckcheck.storage")

BATCH = 200  # records per transaction from the writer thread
# How long the writer gathers records after the first one before it writes them in one transaction: under
# load one commit then carries tens of records (a commit per request cost a third of a worker's time);
# when idle, a record reaches the database at most this much later (it is flushed at exit all the same).
LINGER = 0.05
RETRY_SECONDS = 1.0  # after an outage is seen, live batches go straight to the spool this long
SYNC_INTERVAL = 0.1  # seconds between fdatasyncs of a journal with new lines (NECKCHECK_JOURNAL_SYNC_MS)
STORED, SPOOLED, LOST = "stored", "spooled", "lost"  # where a batch went


_TYPE_CHECKS: dict[Any, Callable[[Any], bool]] = {
    str: lambda v: isinstance(v, str),
    str | None: lambda v: v is None or isinstance(v, str),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    bool: lambda v: isinstance(v, bool),
    list[str]: lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
}


@dataclass(frozen=True)
class Record:
    """One row to store. Subclasses are frozen dataclasses whose fields are JSON values, one per column.

    ``kind`` names the record in its spool line, ``table`` is where it goes and ``key`` is the field that
    holds its own id (unique in the table). A ``list[str]`` field is stored as JSON text, and a field whose
    column is a DateTime is carried as ISO 8601 text.
    """

    kind: ClassVar[str]
    table: ClassVar[Table]
    key: ClassVar[str]
    checks: ClassVar[dict[str, Callable[[Any], bool]]]  # a type check per field
    datetimes: ClassVar[frozenset[str]]  # the fields whose column is a DateTime

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Work out each kind's checks once (KeyError: a field of a type a spool line cannot carry)."""
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls)
        cls.checks = {n: _TYPE_CHECKS[h] for n, h in hints.items() if typing.get_origin(h) is not ClassVar}
        cls.datetimes = frozenset(c.name for c in cls.table.columns if isinstance(c.type, DateTime))

    def line(self) -> str:
        """The record as one spool line (JSON), which says its kind. Made on the request path (the
        journal): orjson writes a dataclass's fields in about 1 us, json.dumps of a dict in 7."""
        try:
            fields = orjson.dumps(self)
        except orjson.JSONEncodeError:  # a lone surrogate: valid JSON as an escape (row() refuses it)
            return json.dumps({"kind": self.kind, **{name: getattr(self, name) for name in self.checks}})
        return f'{{"kind":"{self.kind}",{fields[1:].decode()}'

    @classmethod
    def from_record(cls, record: Any) -> Self:
        """Back from its spooled JSON form; ValueError if it is not one (a damaged or edited line)."""
        if not isinstance(record, dict) or set(record) != set(cls.checks):
            raise ValueError(f"not a {cls.kind} record")
        for name, value in record.items():
            if not cls.checks[name](value):
                raise ValueError(f"{name} has the wrong type")
        return cls(**record)

    def row(self) -> dict[str, Any]:
        """The values for the table; ValueError if a date-time is not ISO 8601, or if a text has no UTF-8
        form (a lone surrogate, which is valid JSON, e.g. in a token's sub: the driver would raise a bare
        UnicodeEncodeError on every retry). Read field by field, not with dataclasses.asdict, whose deep
        copy was a tenth of the writer thread's time."""
        values: dict[str, Any] = {}
        for name in self.checks:
            value = getattr(self, name)
            if isinstance(value, str):
                if name in self.datetimes:
                    value = dt.datetime.fromisoformat(value)
                else:
                    value.encode("utf-8")
            elif isinstance(value, list):
                value = json.dumps(value)  # ASCII: a lone surrogate is escaped, not an error
            values[name] = value
        return values


class RecordWriter:
    """Stores records of the given kinds; one writer per app, one writer thread per process."""

    def __init__(
        self,
        engine: Engine,
        spool: Spool,
        kinds: Sequence[type[Record]],
        metrics: Metrics | None = None,
        background: bool = True,
        sync_interval: float = SYNC_INTERVAL,
    ):
        self.engine = engine
        self.spool = spool
        self.kinds = {kind.kind: kind for kind in kinds}
        self.metrics = metrics
        self.background = background
        self.sync_interval = sync_interval  # seconds between the journal's fdatasyncs; 0: at each record
        self._lock = threading.Lock()
        # Records waiting for the writer thread are in the journal's current segment (in memory, and in
        # its file). An Event rather than a queue.Queue: a Queue wakes the waiting writer thread at every
        # put, and each wake-up is a hand-over of the GIL that the request thread pays for in latency (a
        # waiting thread takes the GIL after at most sys.getswitchinterval(), 5 ms); here the first record
        # of a batch wakes it, once.
        self._journal: Journal | None = None  # this process's (see _start_writer)
        self._arrived = threading.Event()
        self._hurry = threading.Event()  # set by flush(): write what is waiting without the linger
        self._busy = False  # the writer thread holds records taken from the journal, not stored yet
        self._replay_asked = threading.Event()
        self._writer: threading.Thread | None = None
        self._writer_pid = 0
        self._down_until = 0.0  # monotonic time before which the database is not tried for live batches

    def submit(self, record: Record) -> None:
        """Journal the record and queue it for the writer thread: returns once its line is written to
        this process's journal (one write(2)), whatever the database is doing."""
        if not self.background:
            self.store([record])
            return
        self._start_writer().append(record)
        if not self._arrived.is_set():  # a reading of a flag: the Event's lock only for the first record
            self._arrived.set()

    def start(self) -> None:
        """Start this process's writer thread now rather than at its first record (a new gunicorn
        worker): its first pass adopts the journals of processes that died and replays the spool."""
        if self.background:
            self._start_writer()

    def replay_soon(self) -> None:
        """Ask the writer thread to replay the spool (the database is back), without waiting for it."""
        if not self.background:
            self.replay()
        elif not self._replay_asked.is_set():
            self._replay_asked.set()
            self._start_writer()
            self._arrived.set()

    def _start_writer(self) -> Journal:
        journal = self._journal
        if journal is None or self._writer_pid != os.getpid() or not self._alive():
            with self._lock:
                if self._journal is None or self._writer_pid != os.getpid():
                    if self._journal is not None:
                        self._journal.forget()  # a forked child: the parent's segments stay the parent's
                    self._journal = Journal(self.spool.journal_dir, self.sync_interval, self._unjournaled)
                    self._writer = None
                    self._writer_pid = os.getpid()
                    atexit.register(self._exit)
                if not self._alive():
                    self._writer = threading.Thread(target=self._drain, name="neckcheck-writer", daemon=True)
                    self._writer.start()
                    self._replay_asked.set()  # journals of processes that died before this one started
                    self._arrived.set()
                journal = self._journal
        return journal

    def _alive(self) -> bool:
        return self._writer is not None and self._writer.is_alive()

    def _unjournaled(self) -> None:
        if self.metrics:
            self.metrics.audit_unjournaled.inc()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record is in the database or the spool; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._unfinished() and time.monotonic() < deadline:
            self._hurry.set()  # somebody waits for these records (a worker leaving, a replay): no linger
            time.sleep(0.005)
        return not self._unfinished()

    def _exit(self) -> None:
        """At exit (SIGTERM to a gunicorn worker, max_requests): store what is queued, drop the journal."""
        if self._writer_pid == os.getpid() and self._journal is not None:
            self.flush()
            self._journal.close()

    def _unfinished(self) -> bool:
        # _busy is set before records leave the journal's current segment (or a replay asked starts) and
        # cleared once they are stored: one of them always shows work not done yet
        pending = self._journal is not None and self._journal.pending()
        return pending or self._replay_asked.is_set() or self._busy

    def _drain(self) -> None:
        while True:
            self._arrived.wait()  # the first record of a batch
            self._hurry.wait(LINGER)  # the others arrive meanwhile, without waking this thread
            self._hurry.clear()
            self._arrived.clear()  # before taking: a record added from now on sets it again
            self._busy = True
            try:
                self._write_taken()
            except Exception:  # the writer must survive anything
                log.exception("record writer failed")
            finally:
                self._busy = False

    def _write_taken(self) -> None:
        """Store what arrived before the linger ended, BATCH records per transaction, then delete their
        journal segment (or leave it for a replay if not even the spool took them).

        A record added while these are written waits for the next linger, so under load batches stay
        large instead of one small batch chasing another.
        """
        journal = self._journal
        if journal is None:  # unreachable: made before the thread started
            return
        replay = self._replay_asked.is_set()
        self._replay_asked.clear()
        segment = journal.take()
        items, kept = segment.items, True
        try:
            for start in range(0, max(len(items), int(replay)), BATCH):
                kept = self._save(items[start : start + BATCH], force=replay and not start) != LOST and kept
        except BaseException:
            kept = False  # the journal keeps them; a replay stores each record once
            raise
        finally:
            journal.done(segment, kept)

    def store(self, records: Sequence[Record], force: bool = False) -> bool:
        """Replay the spool, then write ``records`` now: True if nothing had to be spooled (never raises
        on an outage)."""
        return self._save([(r, None) for r in records], force) == STORED

    def _save(self, items: Sequence[_Item], force: bool = False) -> str:
        """Replay the spool, then write ``items``: STORED, SPOOLED or LOST (not even the spool took them).

        Right after an outage was seen, live batches skip the database for RETRY_SECONDS (each try can
        wait WAIT_SECONDS), so the writer keeps up and records reach the fsync'd spool, not a growing
        queue in memory; ``force`` (a replay asked by /readyz) tries at once.
        """
        with self._lock:
            if not force and time.monotonic() < self._down_until:
                return self._spool([_line(i) for i in items], None)
            try:
                self._replay()
            except StorageUnavailable as exc:
                return self._spool([_line(i) for i in items], exc.cause)
            except OSError as exc:  # the spool cannot be read: the database may still take these
                log.error("spool not replayed: %s", type(exc).__name__)
            try:
                self._store(items)
            except StorageUnavailable as exc:
                return self._spool(exc.lines, exc.cause)
            self._down_until = 0.0
            return STORED

    def replay(self) -> int:
        """Move spooled records into the database; the number moved (0 if the database is still down)."""
        self.flush()
        with self._lock:
            try:
                return self._replay()
            except StorageUnavailable as exc:
                log.warning("spool not replayed yet (%s)", type(exc.cause).__name__)
            except OSError as exc:
                log.error("spool not replayed: %s", type(exc).__name__)
            return 0

    def pending(self) -> int:
        return self.spool.pending()

    def _replay(self) -> int:
        moved = self.spool.replay(self._write)
        if moved:
            log.info("spool replayed: %d record(s)", moved)
        return moved

    def _parse(self, line: str) -> Record:
        """A spool line back as a record; ValueError if it is not one. A line without a kind is an audit
        record spooled before cards and feedback were (the spool format then)."""
        record = json.loads(line)
        if not isinstance(record, dict) or record.get("kind", "audit") not in self.kinds:
            raise ValueError("not a record of a known kind")
        return self.kinds[record.pop("kind", "audit")].from_record(record)

    def _write(self, lines: list[str]) -> None:
        """Store records given as spool lines (a replay); an unreadable line goes to the quarantine."""
        items: list[_Item] = []
        for line in lines:
            try:
                items.append((self._parse(line), line))
            except ValueError as exc:  # json.JSONDecodeError too: e.g. a line torn by a hard kill
                self._quarantine(line, exc)
        self._store(items)

    def _store(self, items: Sequence[_Item]) -> None:
        """Store records, each with its spool line if it came from the spool (a live record is made into
        a line only if it has to be spooled or quarantined); quarantine those the database refuses for good.

        A batch that fails for good is retried row by row, so only the bad record(s) leave. Raises
        StorageUnavailable, with the lines not stored yet, when the database itself is the problem.
        """
        rows: list[tuple[_Item, dict[str, Any]]] = []
        for item in items:
            try:
                rows.append((item, item[0].row()))
            except ValueError as exc:
                self._quarantine(_line(item), exc)
        try:
            if rows:
                self._insert([(item[0], row) for item, row in rows])
            return
        except SQLAlchemyError as exc:
            if not refused(exc):
                raise StorageUnavailable(exc, [_line(item) for item, _ in rows]) from exc
            if len(rows) == 1:
                self._quarantine(_line(rows[0][0]), exc)
                return
        for done, (item, row) in enumerate(rows):
            try:
                self._insert([(item[0], row)])
            except SQLAlchemyError as exc:
                if not refused(exc):
                    raise StorageUnavailable(exc, [_line(i) for i, _ in rows[done:]]) from exc
                self._quarantine(_line(item), exc)

    def _insert(self, rows: list[tuple[Record, dict[str, Any]]]) -> None:
        """One transaction for the batch and one executemany per table; a record stored before is skipped."""
        by_kind: dict[type[Record], list[dict[str, Any]]] = {}
        for record, row in rows:
            by_kind.setdefault(type(record), []).append(row)
        with self.engine.begin() as conn:
            for kind, values in by_kind.items():
                statement, fresh = _insert_new(conn, kind.table, kind.key, values)
                if fresh:
                    conn.execute(statement, fresh)

    def _spool(self, lines: list[str], cause: BaseException | None) -> str:
        if not lines:
            return SPOOLED
        if cause is not None:
            self._down_until = time.monotonic() + RETRY_SECONDS
            log.warning("database unavailable (%s); %d record(s) spooled", type(cause).__name__, len(lines))
        try:
            self.spool.append(lines)
        except OSError as exc:
            # nowhere to keep them: /readyz already answers 503 for this spool; say which records are gone
            log.error(
                "spool not writable (%s): %d record(s) lost: %s",
                exc.strerror or type(exc).__name__,
                len(lines),
                ", ".join(self._describe(line) for line in lines),
            )
            if self.metrics:
                self.metrics.audit_lost.inc(len(lines))
            return LOST
        if self.metrics:
            self.metrics.audit_spooled.inc(len(lines))
        return SPOOLED

    def _quarantine(self, line: str, exc: Exception) -> None:
        """Set a refused record aside, with the database's reason; logged by id only (no patient data)."""
        orig = getattr(exc, "orig", None) or exc
        reason = (str(orig).splitlines() or [""])[0][:300]
        entry = {
            "quarantinedAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "error": type(exc).__name__,
            "reason": reason,
            "line": line,
        }
        try:
            self.spool.quarantine(json.dumps(entry))
        except OSError as exc2:
            log.error("%s not stored and lost: %s", self._describe(line), exc2.strerror)
            if self.metrics:
                self.metrics.audit_lost.inc()
            return
        log.error(
            "%s %s (%s); moved to %s",
            self._describe(line),
            "refused by the database" if isinstance(exc, SQLAlchemyError) else "unreadable",
            type(exc).__name__,
            self.spool.quarantine_file,
        )
        if self.metrics:
            self.metrics.audit_quarantined.inc()

    def _describe(self, line: str) -> str:
        """The record's kind and id for a log line, and nothing else of it."""
        try:
            record = json.loads(line)
            kind = self.kinds[record.get("kind", "audit")]
            value = record.get(kind.key)
        except (ValueError, AttributeError, KeyError):
            return "record (unreadable)"
        return f"{kind.kind} record " + (repr(value[:36]) if isinstance(value, str) else "(no id)")


# A record to store, and its spool line when it was read from the spool (None for a live record)
_Item = tuple[Record, str | None]


def _line(item: _Item) -> str:
    """The item's spool line: the one it was read from, or its record's own."""
    return item[1] if item[1] is not None else item[0].line()


def _insert_new(
    conn: Connection, table: Table, key: str, rows: list[dict[str, Any]]
) -> tuple[Insert, list[dict[str, Any]]]:
    """An INSERT of ``rows`` that skips a row whose key is stored already, and the rows to give it.

    SQLite (3.24+) and PostgreSQL (9.5+) skip it themselves (ON CONFLICT DO NOTHING): no extra round trip,
    and two workers storing the same card at once do not collide. Another database is asked first.
    """
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(), rows
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(), rows
    column = table.c[key]
    known = set(conn.execute(select(column).where(column.in_([r[key] for r in rows]))).scalars())
    return insert(table), [r for r in rows if r[key] not in known]
