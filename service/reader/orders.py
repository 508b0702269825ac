"""Which of neckcheck's orders are already among an order-sign hook's draft orders.

Recognised by the codes of ``draftOrderRecognition`` in codes.json, plus each order's own codes; the
generic SNOMED "Referral to service" counts as a neurology referral only with the Neurologist performer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.codebook import CodeBook

Pair = tuple[str | None, str | None]


@dataclass(frozen=True)
class Drafted:
    orders: frozenset[str]  # neckcheck order keys already drafted
    cervical_spine_imaging: bool


def _pairs(concept: Any) -> set[Pair]:
    if not isinstance(concept, dict):
        return set()
    return {(c.get("system"), c.get("code")) for c in concept.get("coding") or [] if isinstance(c, dict)}


def _recognition(book: CodeBook) -> dict[Pair, tuple[str, Pair | None]]:
    """code → (order key, required performerType or None)."""
    table: dict[Pair, tuple[str, Pair | None]] = {}
    for key, spec in book.raw["orders"].items():
        # each order's own code and local code; a "standard" code (the generic referral) is not enough
        for coding in filter(None, (spec.get("code"), spec.get("local"))):
            table[(coding["system"], coding["code"])] = (key, None)
    recognised = book.raw["draftOrderRecognition"]
    for c in recognised["brain-imaging"]:
        table[(c["system"], c["code"])] = ("mri-brain", None)
    for c in recognised["physiotherapy-referral"]:
        table[(c["system"], c["code"])] = ("physiotherapy-referral", None)
    for c in recognised["neurology-referral"]:
        performer = (c.get("with") or {}).get("performerType")
        needs = (performer["system"], performer["code"]) if performer else None
        table[(c["system"], c["code"])] = ("neurology-referral", needs)
    return table


def drafted_orders(draft_orders: Any, book: CodeBook) -> Drafted:
    table = _recognition(book)
    spine = {(c["system"], c["code"]) for c in book.raw["draftOrderRecognition"]["cervical-spine-mri"]}
    found: set[str] = set()
    cervical = False
    entries = draft_orders.get("entry") if isinstance(draft_orders, dict) else None
    for entry in entries or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "ServiceRequest":
            continue
        codes = _pairs(resource.get("code"))
        cervical = cervical or bool(codes & spine)
        performers = _pairs(resource.get("performerType"))
        for pair in codes:
            if pair in table:
                key, needs = table[pair]
                if needs is None or needs in performers:
                    found.add(key)
    return Drafted(frozenset(found), cervical)
