"""One value for one fact from one place: what intake modules produce before conflicts are resolved."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

from service.rules.facts import Evidence, FactValue


class Reading(NamedTuple):
    """``value`` ``None`` means the source said it does not know (dataAbsentReason / asked-unknown).

    Two times (rules.md §1, evidence recency): ``when`` it was observed orders readings (latest wins) and
    decides "later than an explicit asOf"; ``seen``, the last instant it is known to have held, is what
    its age runs from (the end of an effective period or of a date-only day). ``seen`` is ``None`` when
    the reading is still going on (an open period) or has no time at all: its age is zero.

    A NamedTuple: immutable like a frozen dataclass, and built in half the time (one per value read).
    """

    fact: str
    value: FactValue
    when: dt.datetime | None
    evidence: Evidence
    seen: dt.datetime | None = None

    def age(self, as_of: dt.datetime) -> dt.timedelta:
        """How long before the evaluation time it was last known to hold; never negative (a reading dated
        after a clock-derived evaluation time is used as current, rules.md §1)."""
        if self.seen is None or self.seen >= as_of:
            return _NO_TIME
        return as_of - self.seen


_NO_TIME = dt.timedelta(0)


@dataclass(frozen=True)
class Skipped:
    """An input resource or field that was not used, or not used as given, and why (an informational
    issue): an unread type, a value taken as unknown, evidence dated after the evaluation time."""

    location: str
    reason: str
