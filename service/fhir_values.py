"""FHIR R4 primitive values that every room reads or writes the same way (R4 §2.24.0.1 Primitive types):
a ``dateTime`` read as an aware UTC datetime and written back in one form, the ``integer`` range, the
``id`` pattern. The engine's readers and writers use these, and so do the front ends that make or show a
FHIR value of their own.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

from service.errors import InvalidInput

# FHIR R4 dateTime: YYYY, YYYY-MM, YYYY-MM-DD or a full time with seconds and zone (§2.24.0.1 Primitive types)
_DATETIME = re.compile(
    r"(?P<y>[0-9]{4})(-(?P<m>[0-9]{2})(-(?P<d>[0-9]{2})"
    r"(T(?P<H>[0-9]{2}):(?P<M>[0-9]{2}):(?P<S>[0-9]{2})(?P<f>\.[0-9]+)?(?P<z>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)
ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
INT32 = (-(2**31), 2**31 - 1)  # FHIR R4 integer: a signed 32-bit value (§2.24.0.1)


def parse_datetime(text: str, loc: str) -> dt.datetime:
    """A FHIR date or dateTime as an aware UTC datetime; a partial date means its first instant.

    A time without a zone is read as UTC (FHIR requires a zone when a time is given; we accept the
    common slip rather than refuse a whole Bundle over it).
    """
    stamp = _parse_datetime(text)
    if isinstance(stamp, str):
        raise InvalidInput(f"{loc} {stamp}", loc)
    return stamp


@lru_cache(maxsize=4096)  # Bundles repeat the same few timestamps; the result is immutable
def _parse_datetime(text: str) -> dt.datetime | str:
    """The datetime, or why the text is not one (a string, so the cache holds failures too)."""
    match = _DATETIME.fullmatch(text)
    if not match:
        return f"is not a FHIR date/dateTime: {text[:40]!r}"
    parts = match.groupdict()
    try:
        stamp = dt.datetime(
            int(parts["y"]),
            int(parts["m"] or 1),
            int(parts["d"] or 1),
            int(parts["H"] or 0),
            int(parts["M"] or 0),
            int(parts["S"] or 0),
            int(((parts["f"] or ".")[1:] + "000000")[:6]),
            tzinfo=dt.UTC,
        )
        zone = parts["z"]
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 14 or minutes > 59:
                return f"has an invalid time zone: {zone!r}"
            stamp -= sign * dt.timedelta(hours=hours, minutes=minutes)
    except (ValueError, OverflowError) as exc:
        return f"is not a valid date: {text[:40]!r} ({exc})"
    return stamp


def fhir_datetime(stamp: dt.datetime) -> str:
    """UTC with a Z, seconds always, fractions only when present."""
    text = stamp.astimezone(dt.UTC).isoformat()
    return text.replace("+00:00", "Z")
