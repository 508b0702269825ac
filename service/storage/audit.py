"""The audit trail: one record per request that read a patient's data ($assess, $populate, each CDS Hooks
call, also one that found nothing to assess): what was read (by resource id, never by name), with which
rules, and what came of it.

A record is stored by the record writer (service/storage/writer.py): journaled before the answer leaves,
then stored in the background, batched, spooled while the database is away; never lost on an exit or a
kill of the process.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Engine, Table, select

from service.assess import Assessment
from service.ids import content_hash, random_uuid
from service.storage.database import as_utc
from service.storage.schema import audit
from service.storage.writer import Record

# The status of a read that gave no assessment (the chart was read all the same, so it is audited): nothing
# on it that the rules read, or data that could not be assessed (another patient's, unreadable FHIR).
NO_FACTS = "no-facts"
NOT_ASSESSED = "not-assessed"


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
    status: str  # final | preliminary | no-facts | not-assessed
    risk: str  # the decision's risk; "none" without an assessment

    @classmethod
    def of(
        cls, assessment: Assessment, request: Any, channel: str, caller: str, outputs: list[str] | None = None
    ) -> AuditEvent:
        """The record of an assessment; ``outputs``: the identifiers of what was answered, when that is
        not the assessment's Bundle (``$populate`` answers a QuestionnaireResponse)."""
        if outputs is None:
            outputs = assessment.output_identifiers
        decision = assessment.decision
        return cls._of_read(
            request,
            channel,
            caller,
            f"{decision.table_id} {decision.table_version}",
            assessment.input_hash,
            outputs,
            "final" if decision.final else "preliminary",
            decision.risk,
        )

    @classmethod
    def of_unassessed(
        cls, bundle: Any, channel: str, caller: str, rule_set: str, status: str = NO_FACTS
    ) -> AuditEvent:
        """The record of a read that gave no assessment (a hook call or an app turn on a chart with no fact
        the rules use, or with data that could not be assessed): ``status`` says which; risk ``none``, no
        outputs."""
        assert status in (NO_FACTS, NOT_ASSESSED), status
        return cls._of_read(bundle, channel, caller, rule_set, content_hash(bundle), [], status, "none")

    @classmethod
    def _of_read(
        cls,
        request: Any,
        channel: str,
        caller: str,
        rule_set: str,
        input_hash: str,
        outputs: list[str],
        status: str,
        risk: str,
    ) -> AuditEvent:
        return cls(
            id=random_uuid(),
            at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            channel=channel,
            caller=caller[:255],
            rule_set=rule_set,
            input_hash=input_hash,
            input_ids=_input_ids(request),
            output_ids=outputs,
            status=status,
            risk=risk,
        )


def _input_ids(request: Any) -> list[str]:
    """ "Type/id" of each resource read: the Bundle's entries, also inside a Parameters ``bundle`` part
    (one at most: a second is refused before anything is assessed)."""
    if isinstance(request, dict) and request.get("resourceType") == "Parameters":
        parts = request.get("parameter")
        bundles = [
            p.get("resource") for p in parts or [] if isinstance(p, dict) and p.get("name") == "bundle"
        ]
        request = bundles[0] if bundles else None
    entries = request.get("entry") if isinstance(request, dict) else None
    ids = []
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            ids.append(f"{resource.get('resourceType')}/{resource['id']}"[:200])
    return ids[:1000]


def since(engine: Engine, when: dt.datetime) -> Iterator[dict[str, Any]]:
    """The records from ``when`` on, oldest first, as exported by `neckcheck audit`."""
    with engine.connect() as conn:
        for row in conn.execute(select(audit).where(audit.c.at >= when).order_by(audit.c.at)):
            item = dict(row._mapping)
            item["at"] = as_utc(item["at"]).isoformat(timespec="seconds")
            item["input_ids"] = json.loads(item["input_ids"])
            item["output_ids"] = json.loads(item["output_ids"])
            yield item
