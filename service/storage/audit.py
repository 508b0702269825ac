"""The audit trail: what was assessed, for whom (by resource id, never by name), with which rules.

A record is stored by the record writer (service/storage/writer.py): in the background, batched, spooled
while the database is away, never lost on a normal exit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Engine, Table, select

from service.assess import Assessment
from service.ids import random_uuid
from service.storage.schema import audit
from service.storage.writer import Record


@dataclass(frozen=True)
class AuditEvent(Record):
    kind: ClassVar[str] = "audit"
    table: ClassVar[Table] = audit
    key: ClassVar[str] = "id"

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
            id=random_uuid(),
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


def since(engine: Engine, when: dt.datetime) -> Iterator[dict[str, Any]]:
    """The records from ``when`` on, oldest first, as exported by `neckcheck audit`."""
    with engine.connect() as conn:
        for row in conn.execute(select(audit).where(audit.c.at >= when).order_by(audit.c.at)):
            item = dict(row._mapping)
            item["at"] = _utc(item["at"]).isoformat(timespec="seconds")
            item["input_ids"] = json.loads(item["input_ids"])
            item["output_ids"] = json.loads(item["output_ids"])
            yield item


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
