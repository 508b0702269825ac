"""CDS Hooks cards issued and the feedback on them (CDS Hooks 2.0.1 §Feedback).

A card is recorded when it is returned (its indicator and the rules behind it), so feedback - which names
only the card's uuid - can be reported per rule and per indicator. No free text is stored: a clinician's
``userComment`` may name the patient, so only whether there was one is kept.

Both are stored by the record writer (service/storage/writer.py), never on the request path. So feedback
can reach the database before its card (the card still queued, or spooled by another worker during an
outage): nothing links the two rows but the card's uuid, and the report joins them when it is read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Engine, Table

from service.ids import random_uuid
from service.storage.schema import cards, feedback
from service.storage.writer import Record, RecordWriter


@dataclass(frozen=True)
class CardRecord(Record):
    kind: ClassVar[str] = "card"
    table: ClassVar[Table] = cards
    key: ClassVar[str] = "uuid"  # the card's own uuid (deterministic: the same card again is one row)

    uuid: str
    service_id: str
    indicator: str
    rules: str  # comma-separated rule ids; "" when none fired
    issued_at: str  # ISO 8601 UTC


@dataclass(frozen=True)
class FeedbackRecord(Record):
    kind: ClassVar[str] = "feedback"
    table: ClassVar[Table] = feedback
    key: ClassVar[str] = "uuid"  # the record's own id, so a replayed record is stored once

    uuid: str
    service_id: str
    card_uuid: str
    outcome: str
    override_system: str | None
    override_code: str | None
    has_comment: bool
    accepted_suggestions: int
    outcome_at: str  # as the EHR sent it
    received_at: str  # ISO 8601 UTC


class FeedbackStore:
    def __init__(self, engine: Engine, writer: RecordWriter):
        self.engine = engine
        self.writer = writer

    def record_card(self, uuid: str, service_id: str, indicator: str, rules: Iterable[str]) -> None:
        """Queue the card's record (returns at once; see service/storage/writer.py)."""
        now = dt.datetime.now(dt.UTC).isoformat()
        self.writer.submit(CardRecord(uuid, service_id, indicator, ",".join(rules)[:255], now))

    def record_feedback(self, service_id: str, items: list[dict[str, Any]]) -> None:
        """Queue one record per feedback item (checked by the caller: service/payloads/cds_hooks.py)."""
        now = dt.datetime.now(dt.UTC).isoformat()
        for item in items:
            override = item.get("overrideReason") or {}
            reason = override.get("reason") or {}
            system, code = reason.get("system"), reason.get("code")
            self.writer.submit(
                FeedbackRecord(
                    uuid=random_uuid(),
                    service_id=service_id,
                    card_uuid=item["card"],
                    outcome=item["outcome"],
                    override_system=system[:255] if isinstance(system, str) else None,
                    override_code=code[:100] if isinstance(code, str) else None,
                    has_comment=bool(override.get("userComment")),
                    accepted_suggestions=len(item.get("acceptedSuggestions") or []),
                    outcome_at=str(item["outcomeTimestamp"])[:40],
                    received_at=now,
                )
            )
