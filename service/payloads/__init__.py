"""The non-FHIR payloads neckcheck reads, as marshmallow schemas: the one source of their rules.

FHIR resources are read by ``service.intake`` under FHIR's own rules. Everything else a caller or an operator
hands us is described here once (design card: marshmallow for non-FHIR payloads): the CDS Hooks request and
feedback (``cds_hooks``) and the trusted-issuers file (``trusted_issuers``). The published JSON Schemas
(schemas/cds-hooks/) and the matching ``openapi.yaml`` components are generated from these classes by
``python -m service.payloads.publish`` (``make schemas``), and a test fails when they drift apart.

A schema class may carry ``Meta.json_schema_extra``: keywords its ``@validates_schema`` rule means, written
in the subset that OpenAPI 3.0 and JSON Schema 2020-12 share, so the published documents state the rule too.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from marshmallow import Schema, ValidationError

from service.errors import InvalidInput, Problem

Path = tuple[str | int, ...]
MAX_PROBLEMS = 20  # a 400 names the first twenty faults, not every item of a huge bad array


@cache
def compiled(schema: type[Schema]) -> Schema:
    """One instance per schema class and process: marshmallow binds the fields once, here."""
    return schema()


def flatten(messages: Any, path: Path = ()) -> list[tuple[Path, str]]:
    """marshmallow's nested error dict as (path, message) pairs, in path order.

    ``_schema`` (a fault of the object as a whole) stays on the object's path; a Dict field's per-entry
    ``{"key": ..., "value": ...}`` level is dropped, so a bad prefetch value is ``prefetch/observations``.
    """
    if isinstance(messages, Mapping):
        keyed = set(messages) <= {"key", "value"} and bool(messages) and bool(path)
        pairs: list[tuple[Path, str]] = []
        for name, inner in messages.items():
            below = path if name == "_schema" or keyed else (*path, name)
            pairs += flatten(inner, below)
        return sorted(pairs, key=lambda pair: [_order(part) for part in pair[0]])
    if isinstance(messages, list | tuple):
        return [pair for message in messages for pair in flatten(message, path)]
    return [(path, str(messages))]


def _order(part: str | int) -> tuple[int, str]:
    """Array indexes in number order (2 before 10), before field names in name order."""
    return (0, f"{part:012d}") if isinstance(part, int) else (1, part)


def load(schema: type[Schema], payload: Any, what: str) -> dict[str, Any]:
    """``payload`` checked by ``schema``; else ``InvalidInput`` (400) naming the path of every fault."""
    try:
        data: dict[str, Any] = compiled(schema).load(payload)
    except ValidationError as error:
        problems = []
        for path, message in flatten(error.messages)[:MAX_PROBLEMS]:
            where = "/".join(map(str, path))
            problems.append(Problem(f"{where or '(root)'}: {message[:200]}", where or None))
        raise InvalidInput(what, problems=problems) from error
    return data
