"""The audit trail: what was assessed, for whom (by resource id, never by name), with which rules.

In the service a record is handed to a writer thread, so an answer never waits on the database: the
thread writes records in batches, with a bounded wait. When the database cannot take them, they are
appended (and fsync'd) to a spool file instead, and every later write first replays the spool. Records
carry their own uuid, so a replayed record is inserted once even if a replay is interrupted half way.
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
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from service.assess import Assessment
from service.config import Settings
from service.storage.schema import audit

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

    def row(self) -> dict[str, Any]:
        values = asdict(self)
        values["at"] = dt.datetime.fromisoformat(self.at)
        values["input_ids"] = json.dumps(self.input_ids)
        values["output_ids"] = json.dumps(self.output_ids)
        return values


def spool_for(settings: Settings) -> Path:
    """The spool of one database: records wait for the database they were meant for, no other."""
    key = hashlib.sha256(settings.database_url.encode("utf-8")).hexdigest()[:16]
    return Path(settings.spool_dir) / key


class AuditLog:
    def __init__(self, engine: Engine, spool_dir: Path, background: bool = True):
        self.engine = engine
        self.spool_dir = spool_dir
        self.background = background
        self._lock = threading.Lock()
        self._queue: queue.Queue[AuditEvent] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._writer_pid = 0

    def submit(self, event: AuditEvent) -> None:
        """Queue a record for the writer thread (started per process: threads do not survive a fork)."""
        if not self.background:
            self.record(event)
            return
        if self._writer is None or self._writer_pid != os.getpid() or not self._writer.is_alive():
            with self._lock:
                if self._writer is None or self._writer_pid != os.getpid() or not self._writer.is_alive():
                    self._writer = threading.Thread(target=self._drain, name="neckcheck-audit", daemon=True)
                    self._writer_pid = os.getpid()
                    self._writer.start()
                    atexit.register(self.flush)
        self._queue.put(event)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record is in the database or the spool; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 200:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._store(batch)
            except Exception:  # the writer must survive anything; the batch is spooled by _store
                log.exception("audit writer failed")
            finally:
                for _ in batch:
                    self._queue.task_done()

    @property
    def _spool(self) -> Path:
        return self.spool_dir / f"audit-{os.getpid()}.ndjson"

    def record(self, event: AuditEvent) -> bool:
        """Write now: True if in the database, False if spooled for later (never raises on an outage)."""
        return self._store([event])

    def _store(self, events: list[AuditEvent]) -> bool:
        with self._lock:
            try:
                self._replay()
                self._insert([e.row() for e in events])
                return True
            except (SQLAlchemyError, OSError) as exc:
                log.warning(
                    "audit database unavailable (%s); %d record(s) spooled", type(exc).__name__, len(events)
                )
                for event in events:
                    self._append(event)
                return False

    def replay(self) -> int:
        """Move spooled records into the database; the number moved (0 if the database is still down)."""
        self.flush()
        with self._lock:
            try:
                return self._replay()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("audit spool not replayed yet (%s)", type(exc).__name__)
                return 0

    def pending(self) -> int:
        return sum(1 for path in self._spool_files() for _ in path.open(encoding="utf-8"))

    def since(self, when: dt.datetime) -> Iterator[dict[str, Any]]:
        with self.engine.connect() as conn:
            for row in conn.execute(select(audit).where(audit.c.at >= when).order_by(audit.c.at)):
                item = dict(row._mapping)
                item["at"] = _utc(item["at"]).isoformat(timespec="seconds")
                item["input_ids"] = json.loads(item["input_ids"])
                item["output_ids"] = json.loads(item["output_ids"])
                yield item

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            known = {
                r for (r,) in conn.execute(select(audit.c.id).where(audit.c.id.in_([r["id"] for r in rows])))
            }
            fresh = [r for r in rows if r["id"] not in known]
            if fresh:
                conn.execute(insert(audit), fresh)

    def _append(self, event: AuditEvent) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        with self._spool.open("a", encoding="utf-8") as spool:
            spool.write(json.dumps(asdict(event)) + "\n")
            spool.flush()
            os.fsync(spool.fileno())

    def _spool_files(self) -> list[Path]:
        if not self.spool_dir.is_dir():
            return []
        for orphan in self.spool_dir.glob("audit-*.replaying-*"):
            if not _alive(int(orphan.suffix.rsplit("-", 1)[1])):  # its worker died mid-replay
                _merge(orphan, orphan.with_suffix(".ndjson"))
        return sorted(self.spool_dir.glob("audit-*.ndjson"))

    def _replay(self) -> int:
        moved = 0
        for path in self._spool_files():
            claimed = path.with_suffix(f".replaying-{os.getpid()}")
            try:
                path.rename(claimed)  # atomic: one worker replays a file, the others skip it
            except FileNotFoundError:
                continue
            events = [
                AuditEvent(**json.loads(line)) for line in claimed.read_text(encoding="utf-8").splitlines()
            ]
            try:
                self._insert([e.row() for e in events])
            except SQLAlchemyError:
                _merge(claimed, path)  # back to the spool, after anything spooled meanwhile
                raise
            claimed.unlink()
            moved += len(events)
        return moved


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _merge(source: Path, into: Path) -> None:
    with into.open("a", encoding="utf-8") as target:
        target.write(source.read_text(encoding="utf-8"))
        target.flush()
        os.fsync(target.fileno())
    source.unlink()


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
