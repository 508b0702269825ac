"""The demo's sample patients: the public scenarios, read from the package (never from a FHIR server).

``/app/demo`` lets a newcomer click through the whole loop after ``make run`` with no EHR: the app reads a
sample's Bundle here instead of searching a FHIR server, and assesses it as of the Bundle's own timestamp
(the scenarios are dated; against today's clock their evidence would be weeks old). A sample's Patient is
made from its fictional ``person`` in samples.json, so the demo shows a name, sex and age as a chart would;
a sample listed with ``patient`` and ``asOf`` and no Bundle is a patient with nothing on record.
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
    person: dict[str, Any] | None  # the Patient resource, shown and never assessed


@cache  # packaged, immutable data: read once per process
def samples() -> tuple[Sample, ...]:
    listed = json.loads(INDEX.read_text(encoding="utf-8"))["samples"]
    return tuple(_read(s) for s in listed)


def _read(listed: dict[str, Any]) -> Sample:
    resources: tuple[dict[str, Any], ...]
    if "patient" in listed:  # nothing on record
        patient, as_of, resources = listed["patient"], listed["asOf"], ()
    else:
        path = SAMPLES_DIR / f"{listed['id']}-observations.json"
        bundle = json.loads(path.read_text(encoding="utf-8"))
        resources = tuple(e["resource"] for e in bundle["entry"])
        patient = resources[0]["subject"]["reference"].removeprefix("Patient/")
        as_of = bundle["timestamp"]
    person = listed.get("person")
    return Sample(
        listed["id"],
        listed["title"],
        patient,
        dt.datetime.fromisoformat(as_of),
        resources,
        _patient(patient, person) if person is not None else None,
    )


def _patient(patient: str, person: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient,
        "name": [{"use": "official", "family": person["family"], "given": [person["given"]]}],
        "gender": person["gender"],
        "birthDate": person["birthDate"],
    }


def sample(sample_id: str) -> Sample:
    for s in samples():
        if s.id == sample_id:
            return s
    raise NotFound(f"no sample {sample_id[:16]!r}; see /app/demo", "sample")
