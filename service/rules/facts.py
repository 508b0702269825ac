"""The engine's input vocabulary: three-valued facts with the evidence behind each.

Nothing here knows FHIR. Intake fills a ``Facts`` mapping; a fact missing from it is unknown, and so is
one whose ``value`` is ``None`` (asked, but unknown). Evidence is carried as opaque references the
output layer turns back into FHIR references.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

FactValue = bool | str | int | float | dt.date | None  # a datetime is a date


class Evidence(NamedTuple):
    """Where a value came from: a resource reference and, for a QuestionnaireResponse, the item linkId.

    A NamedTuple rather than a frozen dataclass: as immutable, hashed and ordered field by field the
    same way, and a Bundle makes dozens of them per call (a tuple is built in half the time and hashed
    in a third).
    """

    resource_type: str
    reference: str
    item: str | None = None
    resolvable: bool = True  # False: the resource had neither id nor fullUrl; cite it by description only

    def describe(self) -> str:
        return f"{self.reference} item {self.item}" if self.item else self.reference


@dataclass(frozen=True)
class Fact:
    """A resolved fact: its value (``None`` = asked but unknown) and the readings that gave it."""

    value: FactValue
    evidence: tuple[Evidence, ...] = ()
    conflict: str | None = None


Facts = Mapping[str, Fact]


class Tri(Enum):
    """Kleene three-valued truth."""

    FALSE = 0
    UNKNOWN = 1
    TRUE = 2


def known(facts: Facts, name: str) -> FactValue:
    """The fact's value, or ``None`` when it is unknown for any reason."""
    fact = facts.get(name)
    return None if fact is None else fact.value
