"""Records for the storage tests, stated once."""

from __future__ import annotations

import uuid

from service.storage.audit import AuditEvent


def audit_event(**changes: str) -> AuditEvent:
    values = {
        "id": str(uuid.uuid4()),
        "at": "2026-11-02T10:00:00+00:00",
        "channel": "http",
        "caller": "dev",
        "rule_set": "neckcheck-escalation 1.0.0",
        "input_hash": "0" * 64,
        "input_ids": ["Observation/o1"],
        "output_ids": ["ra-1"],
        "status": "final",
        "risk": "low",
    }
    return AuditEvent(**{**values, **changes})
