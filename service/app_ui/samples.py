"""The demo's sample patients: the public scenarios, read from the package (never from a FHIR server).

``/app/demo`` lets a newcomer click through the whole loop after ``make run`` with no EHR: the app reads a
sample's Bundle here instead of searching a FHIR server, and assesses it as of the Bundle's own timestamp
(the scenarios are dated; against today's clock their evidence would be weeks old).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from service.errors import NotFound
from service.packaged import DATA_DIR

SAMPLES_DIR = DATA_DIR / "samples"
INDEX = Path(__file__).with_name("samples.json")


@dataclass(frozen=True)
class Sample:
    id: str
    title: str
    patient: str  # the id of the Patient the Bundle is about
    as_of: dt.datetime
    resources: tuple[dict[str, Any], ...]


@cache  # packaged, immutable data: read once per process
def samples() -> tuple[Sample, ...]:
    listed = json.loads(INDEX.read_text(encoding="utf-8"))["samples"]
    return tuple(_read(s["id"], s["title"]) for s in listed)


def _read(sample_id: str, title: str) -> Sample:
    bundle = json.loads((SAMPLES_DIR / f"{sample_id}-observations.json").read_text(encoding="utf-8"))
    resources = tuple(e["resource"] for e in bundle["entry"])
    patient = resources[0]["subject"]["reference"].removeprefix("Patient/")
    as_of = dt.datetime.fromisoformat(bundle["timestamp"])
    return Sample(sample_id, title, patient, as_of, resources)


def sample(sample_id: str) -> Sample:
    for s in samples():
        if s.id == sample_id:
            return s
    raise NotFound(f"no sample {sample_id[:16]!r}; see /app/demo", "sample")
