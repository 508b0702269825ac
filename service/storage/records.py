"""What the record writer stores, and where records wait while the database is away.

Every kind is known to every writer (the service's and the CLI's): a writer replays the whole spool of
its database, whichever kinds it holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import Engine

from service.config import Settings
from service.metrics import Metrics
from service.storage.audit import AuditEvent
from service.storage.feedback import CardRecord, FeedbackRecord
from service.storage.shadow import ShadowRecord
from service.storage.spool import Spool
from service.storage.writer import Record, RecordWriter

KINDS: tuple[type[Record], ...] = (AuditEvent, CardRecord, FeedbackRecord, ShadowRecord)


def spool_for(settings: Settings) -> Spool:
    """The spool of one database: records wait for the database they were meant for, no other."""
    key = hashlib.sha256(settings.database_url.encode("utf-8")).hexdigest()[:16]
    return Spool(Path(settings.spool_dir) / key, settings.spool_max_bytes)


def writer_for(
    settings: Settings, engine: Engine, metrics: Metrics | None = None, background: bool = True
) -> RecordWriter:
    """The writer of the service (``background``: a writer thread) or of a CLI command (writes at once)."""
    sync = settings.journal_sync_ms / 1000
    return RecordWriter(engine, spool_for(settings), KINDS, metrics, background, sync)
