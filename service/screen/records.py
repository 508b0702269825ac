"""One export line → what screening does with it: assess it, compare it, skip it, or report it.

rules.md §4 reads Observation and QuestionnaireResponse, and uses Patient and Encounter for references:
those are grouped by patient and assessed. ServiceRequest is not assessed; it is kept to compare the
orders already in the data with the proposed ones (the summary's "escalation due, no matching
ServiceRequest"). Any other type is skipped and counted. A line that is not strict JSON (the same
reader as an HTTP body: no duplicate keys, NaN or invalid UTF-8) or not a resource is malformed: it is
reported by file and line and never stops the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from service.assess import parse_json, subject_key
from service.errors import InvalidInput
from service.fhir_values import ID

ASSESSED = frozenset({"Observation", "QuestionnaireResponse", "Patient", "Encounter"})
COMPARED = "ServiceRequest"

# what a line is, as counted in the summary (a file over the decompression limit is TOO_LARGE)
ASSESS, COMPARE, SKIP, NO_PATIENT, MALFORMED, BLANK, TOO_LONG, TOO_LARGE = (
    "assess",
    "compare",
    "skip",
    "no-patient",
    "malformed",
    "blank",
    "too-long",
    "too-large",
)


@dataclass(frozen=True, slots=True)
class Line:
    kind: str  # one of the names above
    resource_type: str | None = None
    patient: str | None = None  # "Patient/<id>" for ASSESS and COMPARE
    problem: str | None = None  # why, for MALFORMED, NO_PATIENT, TOO_LONG and TOO_LARGE


def classify(raw: bytes) -> Line:
    """What one NDJSON line is, read as strictly as an HTTP body (service.assess.parse_json)."""
    if not raw.strip():
        return Line(BLANK)
    try:
        resource = load(raw)
    except InvalidInput as exc:
        return Line(MALFORMED, problem=str(exc).replace("body", "line", 1))
    if not isinstance(resource, dict):
        return Line(MALFORMED, problem="line is not a JSON object (a FHIR resource)")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return Line(MALFORMED, problem="line has no resourceType: not a FHIR resource")
    if rtype not in ASSESSED and rtype != COMPARED:
        return Line(SKIP, rtype)
    patient = patient_of(resource)
    if patient is None:
        return Line(NO_PATIENT, rtype, problem=f"{rtype} with no Patient subject: cannot be grouped")
    return Line(COMPARE if rtype == COMPARED else ASSESS, rtype, patient)


def patient_of(resource: dict[str, Any]) -> str | None:
    """The patient a resource belongs to: a Patient's own id, else ``subject.reference`` to a Patient."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return f"Patient/{rid}" if isinstance(rid, str) and ID.fullmatch(rid) else None
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(reference, str):
        return None
    key = subject_key(reference)
    # a FHIR id (no tab or newline: the key is a field of the spill's lines) or no patient at all
    return key if key.startswith("Patient/") and ID.fullmatch(key[len("Patient/") :]) else None


_INT64 = 2.0**63  # orjson reads an integer beyond 64 bits as a float at least this large


def load(raw: bytes) -> Any:
    """A line as the HTTP body reader (``parse_json``) reads it, raising ``InvalidInput`` the same way.

    Fast path: orjson, accepted only when it cannot have read the line differently from ``parse_json``.
    orjson keeps the last of duplicate keys silently (strict FHIR JSON refuses them): with no whitespace
    after a string and no escaped quote, each key ends with ``":``, so as many keys in the result as
    ``":`` in the text means none was dropped (a string starting with a colon only adds to the text's
    count, sending the line to the slow path). orjson also rounds an integer beyond 64 bits to a float:
    a number that large goes the slow path too. Anything else is ``parse_json`` itself.
    """
    if b'\\"' not in raw and b'" ' not in raw and b'"\t' not in raw and b'"\r' not in raw:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            if _keys(value) == raw.count(b'":'):
                return value
    return parse_json(raw)


def _keys(value: Any) -> int:
    """Keys in all the objects of ``value``; -1 for a float as large as an integer beyond 64 bits."""
    items: Iterable[Any]
    if isinstance(value, dict):
        items, count = value.values(), len(value)
    elif isinstance(value, list):
        items, count = value, 0
    else:
        return 0 if type(value) is not float or abs(value) < _INT64 else -1
    for item in items:
        kind = type(item)
        if kind is dict or kind is list:
            inner = _keys(item)
            if inner < 0:
                return -1
            count += inner
        elif kind is float and abs(item) >= _INT64:
            return -1
    return count
