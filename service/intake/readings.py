"""One value for one fact from one place: what intake modules produce before conflicts are resolved."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

from service.rules.facts import Evidence, FactValue


class Reading(NamedTuple):
    """``value`` ``None`` means the source said it does not know (dataAbsentReason / asked-unknown).

    A NamedTuple: immutable like a frozen dataclass, and built in half the time (one per value read).
    """

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
