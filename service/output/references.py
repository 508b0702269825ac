"""Evidence → FHIR Reference: a literal reference, or a description of an input that cannot be addressed."""

from __future__ import annotations

from typing import Any

from service.rules.facts import Evidence


def reference(evidence: Evidence) -> dict[str, Any]:
    """A literal reference when the input resource could be addressed, else a description of it."""
    return _reference(evidence.resource_type, evidence.reference, evidence.resolvable)


def _reference(resource_type: str, ref: str, resolvable: bool) -> dict[str, Any]:
    if resolvable:
        return {"reference": ref, "type": resource_type}
    return {"display": ref, "type": resource_type}


def references(
    evidence: list[Evidence] | tuple[Evidence, ...], resource_type: str | None = None
) -> list[Any]:
    """One Reference per input resource (QuestionnaireResponse items collapse onto their resource)."""
    seen: dict[tuple[str, str, bool], None] = {}
    for ev in evidence:
        if resource_type is None or ev.resource_type == resource_type:
            seen[(ev.resource_type, ev.reference, ev.resolvable)] = None
    return [_reference(t, r, ok) for t, r, ok in seen]
