"""Shadow mode's record: one live call whose result the candidate rule table would change.

Only ids and the two results are kept (the patient reference, the input's hash, status, risk, rule ids and
orders): enough for a committee to count and trace, nothing of the chart itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Engine, Table, select

from service.storage.database import as_utc
from service.storage.schema import shadow_difference
from service.storage.writer import Record


@dataclass(frozen=True)
class ShadowRecord(Record):
    kind: ClassVar[str] = "shadow"
    table: ClassVar[Table] = shadow_difference
    key: ClassVar[str] = "id"

    id: str
    at: str  # ISO 8601 UTC
    channel: str
    live_rule_set: str
    shadow_rule_set: str
    subject: str
    input_hash: str
    before: str  # JSON text of Assessment.outcome under the live table
    after: str
    transitions: list[str]  # "kind: transition", as rules diff --corpus counts them


def differences_since(engine: Engine, since: dt.datetime) -> Iterator[dict[str, Any]]:
    """The records from ``since`` on, oldest first, with their JSON fields read back."""
    query = select(shadow_difference).where(shadow_difference.c.at >= since).order_by(shadow_difference.c.at)
    with engine.connect() as conn:
        for row in conn.execute(query):
            item = dict(row._mapping)
            item["at"] = as_utc(item["at"]).isoformat(timespec="seconds")
            for name in ("before", "after", "transitions"):
                item[name] = json.loads(item[name])
            yield item
