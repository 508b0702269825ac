"""Deterministic identifiers: the same input, rule version and asOf always give the same ids.

That is what lets an EHR post a transaction Bundle twice without duplicates (conditional create on the
identifier) and what makes outputs byte-identical for a golden test.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

NAMESPACE = uuid.UUID("7b4f0f3e-5a0c-5b8e-9a53-6e65636b6368")  # fixed; changing it changes every id


def input_digest(request: Any, table_id: str, table_version: str, as_of: str) -> str:
    """SHA-256 over the canonical JSON of the input plus the rule version and the evaluation time."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = "\n".join((table_id, table_version, as_of, canonical))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_uuid(digest: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{digest}/{name}"))
