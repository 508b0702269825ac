"""The Patient resource → who the clinician app says it is showing: name, sex and age.

A result shown under a bare id ("Patient scn-5") invites the wrong chart; the name, sex and age let the
clinician check it is their patient. Each part is ``None`` when the Patient read gives none (or no Patient
could be read: not found, or the token may not read it), and the page says "not on record": nothing is
guessed. The Patient is context only; the rules never read it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

JSON = dict[str, Any]
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_CURRENT = ("old", "anonymous", "temp")  # HumanName.use values that do not name the patient now


def _name(patient: JSON) -> str | None:
    """The first current HumanName (R4 §8.2.1: ``official`` or ``usual`` preferred), as its ``text`` or
    its given names and family name."""
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    current = [n for n in names if n.get("use") not in _NOT_CURRENT]
    preferred = [n for n in current if n.get("use") in ("official", "usual")] or current
    for name in preferred:
        text = name.get("text")
        if isinstance(text, str) and text.strip():
            return text.strip()
        parts = [*(name.get("given") or []), name.get("family")]
        joined = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
        if joined:
            return joined
    return None


def _age(birth_date: str | None, on: dt.date) -> int | None:
    """Whole years on ``on``; only from a full date (a year alone could be off by one)."""
    if birth_date is None or not _FULL_DATE.fullmatch(birth_date):
        return None
    try:
        born = dt.date.fromisoformat(birth_date)
    except ValueError:
        return None
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return years if years >= 0 else None


def demographics(patient: JSON | None, as_of: dt.datetime) -> JSON:
    """Name, sex (FHIR ``Patient.gender``) and age on the assessment's date; ``None``: not on record."""
    if patient is None:
        return {"name": None, "sex": None, "birthDate": None, "age": None}
    gender = patient.get("gender")
    birth = patient.get("birthDate")
    birth_date = birth if isinstance(birth, str) and birth else None
    return {
        "name": _name(patient),
        "sex": gender if isinstance(gender, str) and gender else None,
        "birthDate": birth_date,
        "age": _age(birth_date, as_of.date()),
    }
