"""One value for one fact from one place: what intake modules produce before conflicts are resolved."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from service.rules.facts import Evidence, FactValue


@dataclass(frozen=True)
class Reading:
    """``value`` ``None`` means the source said it does not know (dataAbsentReason / asked-unknown)."""

    fact: str
    value: FactValue
    when: dt.datetime | None
    evidence: Evidence


@dataclass(frozen=True)
class Skipped:
    """An input resource or field that was not used, or not used as given, and why (an informational
    issue): an unread type, a value taken as unknown, evidence dated after the evaluation time."""

    location: str
    reason: str
