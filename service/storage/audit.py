"""The audit trail: what was assessed, for whom (by resource id, never by name), with which rules.

In the service a record is handed to a writer thread, so an answer never waits on the database: the
thread writes records in batches, with a bounded wait. When the database cannot take them (an outage: a
lost connection, a timeout), they are appended, fsync'd, to the spool (service/storage/spool.py) instead,
and the writer replays the spool before its next write, or when /readyz finds the database back. Records
carry their own uuid, so a replayed record is inserted once even if a replay is interrupted half way.

A record the database refuses for good (a value it cannot hold) is not retried: the batch is retried row
by row to find it, it goes to the spool's quarantine file, and the other records are stored.

Records still queued in memory are written when the process exits normally (SIGTERM included); only a
hard kill of the process can lose the few milliseconds' worth not yet written.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from service.assess import Assessment
from service.config import Settings
from service.errors import StorageUnavailable
from service.metrics import Metrics
from service.storage.database import refused
from service.storage.schema import audit
from service.storage.spool import Spool

log = logging.getLogger("neckcheck.audit")


@dataclass(frozen=True)
class AuditEvent:
    id: str
    at: str  # ISO 8601 UTC
    channel: str
    caller: str
    rule_set: str
    input_hash: str
    input_ids: list[str]
    output_ids: list[str]
    status: str
    risk: str

    @classmethod
    def of(cls, assessment: Assessment, request: Any, channel: str, caller: str) -> AuditEvent:
        entries = request.get("entry") if isinstance(request, dict) else None
        ids = []
        for entry in entries or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                ids.append(f"{resource.get('resourceType')}/{resource['id']}"[:200])
        outputs = [
            e["resource"]["identifier"][0]["value"]
            for e in assessment.bundle["entry"]
            if e["resource"].get("identifier")
        ]
        decision = assessment.decision
        return cls(
            id=str(uuid.uuid4()),
            at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            channel=channel,
            caller=caller[:255],
            rule_set=f"{decision.table_id} {decision.table_version}",
            input_hash=assessment.input_hash,
            input_ids=ids[:1000],
            output_ids=outputs,
            status="final" if decision.final else "preliminary",
            risk=decision.risk,
        )

    @classmethod
    def from_record(cls, record: Any) -> AuditEvent:
        """Back from its spooled JSON form; ValueError if it is not one (a damaged or edited line)."""
        if not isinstance(record, dict) or set(record) != {f.name for f in fields(cls)}:
            raise ValueError("not an audit record")
        for name, value in record.items():
            if name in ("input_ids", "output_ids"):
                if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                    raise ValueError(f"{name} is not a list of strings")
            elif not isinstance(value, str):
                raise ValueError(f"{name} is not a string")
        # a lone surrogate ("\\ud800" is valid JSON, e.g. in a token's sub) has no UTF-8 form: the driver
        # would raise a bare UnicodeEncodeError on every retry
        json.dumps(record, ensure_ascii=False).encode("utf-8")
        return cls(**record)

    def line(self) -> str:
        return json.dumps(asdict(self))

    def row(self) -> dict[str, Any]:
        values = asdict(self)
        values["at"] = dt.datetime.fromisoformat(self.at)
        values["input_ids"] = json.dumps(self.input_ids)
        values["output_ids"] = json.dumps(self.output_ids)
        return values


def spool_for(settings: Settings) -> Spool:
    """The spool of one database: records wait for the database they were meant for, no other."""
    key = hashlib.sha256(settings.database_url.encode("utf-8")).hexdigest()[:16]
    return Spool(Path(settings.spool_dir) / key, settings.spool_max_bytes)


BATCH = 200  # records per INSERT from the writer thread
RETRY_SECONDS = 1.0  # after an outage is seen, live batches go straight to the spool this long


class AuditLog:
    def __init__(self, engine: Engine, spool: Spool, metrics: Metrics | None = None, background: bool = True):
        self.engine = engine
        self.spool = spool
        self.metrics = metrics
        self.background = background
        self._lock = threading.Lock()
        self._queue: queue.Queue[AuditEvent | None] = queue.Queue()  # None: "replay the spool"
        self._replay_asked = threading.Event()
        self._writer: threading.Thread | None = None
        self._writer_pid = 0
        self._down_until = 0.0  # monotonic time before which the database is not tried for live batches

    def submit(self, event: AuditEvent) -> None:
        """Queue a record for the writer thread (started per process: threads do not survive a fork)."""
        if not self.background:
            self.record(event)
            return
        self._start_writer()
        self._queue.put(event)

    def replay_soon(self) -> None:
        """Ask the writer thread to replay the spool (the database is back), without waiting for it."""
        if not self.background:
            self.replay()
        elif not self._replay_asked.is_set():
            self._replay_asked.set()
            self._start_writer()
            self._queue.put(None)

    def _start_writer(self) -> None:
        if self._writer is None or self._writer_pid != os.getpid() or not self._writer.is_alive():
            with self._lock:
                if self._writer is None or self._writer_pid != os.getpid() or not self._writer.is_alive():
                    self._writer = threading.Thread(target=self._drain, name="neckcheck-audit", daemon=True)
                    self._writer_pid = os.getpid()
                    self._writer.start()
                    atexit.register(self.flush)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record is in the database or the spool; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            replay = None in batch
            if replay:
                self._replay_asked.clear()
            try:
                self.store([e for e in batch if e is not None], force=replay)
            except Exception:  # the writer must survive anything
                log.exception("audit writer failed")
            finally:
                for _ in batch:
                    self._queue.task_done()

    def record(self, event: AuditEvent) -> bool:
        """Write now: True if in the database, False if spooled for later (never raises on an outage)."""
        return self.store([event])

    def store(self, events: Sequence[AuditEvent], force: bool = False) -> bool:
        """Replay the spool, then write ``events``: True if nothing had to be spooled.

        Right after an outage was seen, live batches skip the database for RETRY_SECONDS (each try can
        wait WAIT_SECONDS), so the writer keeps up and records reach the fsync'd spool, not a growing
        queue in memory; ``force`` (a replay asked by /readyz) tries at once.
        """
        lines = [e.line() for e in events]
        with self._lock:
            if not force and time.monotonic() < self._down_until:
                return self._spool(lines, None)
            try:
                self._replay()
            except StorageUnavailable as exc:
                return self._spool(lines, exc.cause)
            except OSError as exc:  # the spool cannot be read: the database may still take these
                log.error("audit spool not replayed: %s", type(exc).__name__)
            try:
                self._write(lines)
            except StorageUnavailable as exc:
                return self._spool(exc.lines, exc.cause)
            self._down_until = 0.0
            return True

    def replay(self) -> int:
        """Move spooled records into the database; the number moved (0 if the database is still down)."""
        self.flush()
        with self._lock:
            try:
                return self._replay()
            except StorageUnavailable as exc:
                log.warning("audit spool not replayed yet (%s)", type(exc.cause).__name__)
            except OSError as exc:
                log.error("audit spool not replayed: %s", type(exc).__name__)
            return 0

    def pending(self) -> int:
        return self.spool.pending()

    def since(self, when: dt.datetime) -> Iterator[dict[str, Any]]:
        with self.engine.connect() as conn:
            for row in conn.execute(select(audit).where(audit.c.at >= when).order_by(audit.c.at)):
                item = dict(row._mapping)
                item["at"] = _utc(item["at"]).isoformat(timespec="seconds")
                item["input_ids"] = json.loads(item["input_ids"])
                item["output_ids"] = json.loads(item["output_ids"])
                yield item

    def _replay(self) -> int:
        moved = self.spool.replay(self._write)
        if moved:
            log.info("audit spool replayed: %d record(s)", moved)
        return moved

    def _write(self, lines: list[str]) -> None:
        """Store records given as spool lines; quarantine those the database refuses for good.

        A batch that fails for good is retried row by row, so only the bad record(s) leave. Raises
        StorageUnavailable, with the lines not stored yet, when the database itself is the problem.
        """
        rows: list[tuple[str, dict[str, Any]]] = []
        for line in lines:
            try:
                rows.append((line, AuditEvent.from_record(json.loads(line)).row()))
            except ValueError as exc:  # json.JSONDecodeError too: e.g. a line torn by a hard kill
                self._quarantine(line, exc)
        try:
            if rows:
                self._insert([row for _, row in rows])
            return
        except SQLAlchemyError as exc:
            if not refused(exc):
                raise StorageUnavailable(exc, [line for line, _ in rows]) from exc
            if len(rows) == 1:
                self._quarantine(rows[0][0], exc)
                return
        for done, (line, row) in enumerate(rows):
            try:
                self._insert([row])
            except SQLAlchemyError as exc:
                if not refused(exc):
                    raise StorageUnavailable(exc, [line for line, _ in rows[done:]]) from exc
                self._quarantine(line, exc)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            known = {
                r for (r,) in conn.execute(select(audit.c.id).where(audit.c.id.in_([r["id"] for r in rows])))
            }
            fresh = [r for r in rows if r["id"] not in known]
            if fresh:
                conn.execute(insert(audit), fresh)

    def _spool(self, lines: list[str], cause: BaseException | None) -> bool:
        if cause is not None:
            self._down_until = time.monotonic() + RETRY_SECONDS
            log.warning(
                "audit database unavailable (%s); %d record(s) spooled", type(cause).__name__, len(lines)
            )
        try:
            self.spool.append(lines)
        except OSError as exc:
            # nowhere to keep them: /readyz already answers 503 for this spool; say which records are gone
            log.error(
                "audit spool not writable (%s): %d record(s) lost: %s",
                exc.strerror or type(exc).__name__,
                len(lines),
                ", ".join(_record_id(line) for line in lines),
            )
            if self.metrics:
                self.metrics.audit_lost.inc(len(lines))
            return False
        if self.metrics:
            self.metrics.audit_spooled.inc(len(lines))
        return False

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
            log.error("audit record %s not stored and lost: %s", _record_id(line), exc2.strerror)
            if self.metrics:
                self.metrics.audit_lost.inc()
            return
        log.error(
            "audit record %s %s (%s); moved to %s",
            _record_id(line),
            "refused by the database" if isinstance(exc, SQLAlchemyError) else "unreadable",
            type(exc).__name__,
            self.spool.quarantine_file,
        )
        if self.metrics:
            self.metrics.audit_quarantined.inc()


def _record_id(line: str) -> str:
    """The record's uuid for a log line, and nothing else of it."""
    try:
        value = json.loads(line).get("id")
    except (ValueError, AttributeError):
        return "(unreadable)"
    return repr(value[:36]) if isinstance(value, str) else "(no id)"


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
