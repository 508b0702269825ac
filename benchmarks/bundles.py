"""Deterministic input Bundles for the benchmarks.

``observations_bundle(n)`` builds a ``collection`` Bundle of exactly ``n`` Observation entries for one
patient, with the codes of schemas/codes.json:

* every fact of the rule table, through its standard codes (SNOMED CT, LOINC) and the local codes, both
  Observation patterns (the fact's own code, and LOINC 75325-1 "Symptom" with the finding as value);
* every value shape intake reads: valueBoolean, Y/N valueCodeableConcept, a bare coded finding,
  valueQuantity durations in d/wk/h/mo, laterality concepts, onset valueDateTime, 0-10 pain scores,
  dataAbsentReason, components and bodySite riders on the facial-numbness Observation;
* many readings of each fact with different effective times (and some ties at the same instant) so the
  conflict rule (latest wins; a tie goes to the worse value) does real work;
* ~15 % irrelevant Observations (vital signs, labs) that intake must skip, and a few statuses it ignores
  (entered-in-error, cancelled) or accepts (preliminary, amended, corrected).

The same seed always gives the same bytes; bundles of different sizes share their first entries.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CODES = json.loads((ROOT / "schemas" / "codes.json").read_text(encoding="utf-8"))
RULES = json.loads(
    sorted((ROOT / "schemas" / "rules").glob("neckcheck-escalation-*.json"))[-1].read_text("utf-8")
)
KIND = {f["name"]: f["kind"] for f in RULES["facts"]}

SMALL = ROOT / "tests" / "fixtures" / "scenarios" / "S7-observations.json"
SIZES = (100, 500, 1000)
SEED = 20260310
PATIENT = "Patient/bench-1"
TIMESTAMP = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)

IRRELEVANT = [
    ("http://loinc.org", "8867-4", "Heart rate", "/min", 50, 110),
    ("http://loinc.org", "8310-5", "Body temperature", "Cel", 36, 39),
    ("http://loinc.org", "29463-7", "Body weight", "kg", 50, 110),
    ("http://loinc.org", "2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70, 180),
    ("http://loinc.org", "9279-1", "Respiratory rate", "/min", 10, 24),
]
STATUSES = ["final"] * 90 + ["amended"] * 3 + ["preliminary"] * 2 + ["corrected"] * 2
STATUSES += ["entered-in-error"] * 2 + ["cancelled"]


def _coding(c: dict[str, Any]) -> dict[str, str]:
    return {k: c[k] for k in ("system", "code", "display") if k in c}


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.facts = list(CODES["facts"])
        # a few "recent" instants shared by many readings: ties at the latest time exercise the tie-break
        self.recent = [TIMESTAMP - dt.timedelta(hours=h) for h in range(0, 6)]

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def when(self) -> dt.datetime:
        if self.rng.random() < 0.25:
            return self.rng.choice(self.recent)
        return TIMESTAMP - dt.timedelta(minutes=self.rng.randrange(6 * 60, 90 * 24 * 60))

    def observation(self) -> dict[str, Any]:
        rng = self.rng
        rid = self.uid()
        res: dict[str, Any] = {
            "resourceType": "Observation",
            "id": rid,
            "status": rng.choice(STATUSES),
        }
        if rng.random() < 0.15:
            self._irrelevant(res)
        else:
            self._fact(res, rng.choice(self.facts))
        res["subject"] = {"reference": PATIENT}
        when = self.when()
        shape = rng.random()
        if shape < 0.9:
            res["effectiveDateTime"] = _stamp(when)
        elif shape < 0.95:
            res["effectivePeriod"] = {"start": _stamp(when)}
        else:
            res["issued"] = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        # key order as a FHIR server would send it: value[x] after subject and effective[x]
        value_keys = [k for k in res if k.startswith(("value", "dataAbsentReason", "component", "bodySite"))]
        for k in value_keys:
            res[k] = res.pop(k)
        return {"fullUrl": f"urn:uuid:{rid}", "resource": res}

    def _irrelevant(self, res: dict[str, Any]) -> None:
        system, code, display, unit, lo, hi = self.rng.choice(IRRELEVANT)
        res["category"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs" if unit != "mg/dL" else "laboratory",
                    }
                ]
            }
        ]
        res["code"] = {"coding": [{"system": system, "code": code, "display": display}], "text": display}
        res["valueQuantity"] = {
            "value": round(self.rng.uniform(lo, hi), 1),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        }

    def _fact(self, res: dict[str, Any], fact: str) -> None:
        rng = self.rng
        codings = CODES["facts"][fact]["codings"]
        standard = [c for c in codings if c["status"] != "local"]
        kind = KIND[fact]
        if kind == "bool" and standard and rng.random() < 0.15:
            # pattern 2: LOINC "Symptom" with the finding as the value
            res["code"] = {"coding": [_coding(CODES["symptom"])]}
            res["valueCodeableConcept"] = {"coding": [_coding(rng.choice(standard))]}
            return
        res["code"] = {"coding": [_coding(rng.choice(codings))]}
        if rng.random() < 0.02:
            res["dataAbsentReason"] = {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}
                ]
            }
            return
        if kind == "bool":
            self._bool(res, fact)
        elif kind == "side":
            res["valueCodeableConcept"] = {"coding": [self._side()]}
        elif kind == "days":
            unit, top = rng.choice([("d", 60), ("wk", 8), ("h", 200), ("mo", 2)])
            res["valueQuantity"] = {
                "value": rng.randint(1, top),
                "unit": unit,
                "system": CODES["units"]["system"],
                "code": unit,
            }
        elif kind == "date":
            onset = TIMESTAMP - dt.timedelta(days=rng.randint(1, 60), hours=rng.randint(0, 23))
            res["valueDateTime"] = _stamp(onset)
        elif kind == "score":
            res["valueInteger"] = rng.randint(0, 10)

    def _bool(self, res: dict[str, Any], fact: str) -> None:
        rng = self.rng
        shape = rng.random()
        if shape < 0.7:
            res["valueBoolean"] = rng.random() < 0.5
        elif shape < 0.88:
            yn = CODES["yesNo"]
            answer = yn["yes"] if rng.random() < 0.5 else yn["no"]
            res["valueCodeableConcept"] = {"coding": [{"system": yn["system"], "code": answer}]}
        elif shape < 0.93:
            au = CODES["askedUnknown"]
            res["valueCodeableConcept"] = {"coding": [{"system": au["system"], "code": au["code"]}]}
        else:
            pass  # a coded finding with no value: present
        if fact == "facial-numbness" and res.get("valueBoolean") is True and rng.random() < 0.3:
            # side and duration riding on the numbness Observation itself
            res["component"] = [
                {
                    "code": {"coding": [_coding(CODES["laterality"]["attribute"])]},
                    "valueCodeableConcept": {"coding": [self._side()]},
                },
                {
                    "code": {"coding": [_coding(CODES["facts"]["facial-numbness-days"]["codings"][0])]},
                    "valueQuantity": {
                        "value": rng.randint(1, 40),
                        "unit": "d",
                        "system": CODES["units"]["system"],
                        "code": "d",
                    },
                },
            ]

    def _side(self) -> dict[str, str]:
        return _coding(CODES["laterality"][self.rng.choice(["left", "right", "both"])])


def observations_bundle(n: int, seed: int = SEED) -> dict[str, Any]:
    gen = _Gen(seed)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _stamp(TIMESTAMP),
        "entry": [gen.observation() for _ in range(n)],
    }


EVERY_FACT = "a dozen (every fact)"


def every_fact(recorded: dt.datetime) -> list[dict[str, Any]]:
    """One current reading of every fact of the rule table, as an EHR records them: the heaviest ordinary
    call (issue 21 measures the hot path on it). Booleans present or absent, the side, the duration in
    days, the onset, the pain score; each a plain Observation of the fact's first code."""
    stamp = _stamp(recorded)
    values = {"bool": None, "side": "left", "days": 20, "date": "2026-02-20", "score": 6}
    out = []
    for i, fact in enumerate(RULES["facts"]):
        coding = _coding(CODES["facts"][fact["name"]]["codings"][0])
        res: dict[str, Any] = {
            "resourceType": "Observation",
            "id": f"every-fact-{i}",
            "status": "final",
            "code": {"coding": [coding]},
            "subject": {"reference": PATIENT},
            "effectiveDateTime": stamp,
        }
        kind, value = fact["kind"], values[fact["kind"]]
        if kind == "bool":
            res["valueBoolean"] = fact["name"] in ("facial-numbness", "headache", "neck-pain")
        elif kind == "side":
            res["valueCodeableConcept"] = {"coding": [_coding(CODES["laterality"][value])]}
        elif kind == "days":
            res["valueQuantity"] = {
                "value": value,
                "unit": "d",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            }
        elif kind == "date":
            res["valueDateTime"] = value
        else:
            res["valueInteger"] = value
        out.append(res)
    return out


def cases() -> list[tuple[str, bytes]]:
    """(name, request bytes) for every in-process case, smallest first."""
    every = {"resourceType": "Bundle", "type": "collection", "timestamp": _stamp(TIMESTAMP)}
    every["entry"] = [{"resource": r} for r in every_fact(TIMESTAMP)]
    out = [("small (S7)", SMALL.read_bytes()), (EVERY_FACT, json.dumps(every, indent=1).encode("utf-8"))]
    for n in SIZES:
        out.append((f"{n} obs", json.dumps(observations_bundle(n), indent=1).encode("utf-8")))
    return out


# The CDS Hooks load: one current reading of every fact (``every_fact``) as the Observations prefetch, no
# QuestionnaireResponse (a moderate card: one-sided numbness with headache). The first Observation's id ends
# in the marker benchmarks/wrk.lua replaces per request.
HOOK_SCENARIO = "S9-observations.json"  # the patient and the spec's request around the prefetch
MARKER = "@@N@@"


def hook_body(hook: str, recorded: dt.datetime) -> bytes:
    """A ``patient-view`` or ``order-sign`` request (order-sign drafts a cervical spine MRI) as bytes, its
    chart recorded at ``recorded``: a hook is assessed at the server's clock, and a chart older than the
    lookbacks (rules.md §1) would be a different workload (every reading stale)."""
    import sys

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.cds.support import hook_request, searchset

    context: dict[str, Any] = {}
    if hook == "order-sign":
        spec = json.loads(
            (ROOT / "tests" / "fixtures" / "cds-hooks" / "context-order-sign-r4.json").read_text()
        )
        drafts = spec["context"]["draftOrders"]
        drafts["entry"].append(
            {
                "resource": {
                    "resourceType": "ServiceRequest",
                    "status": "draft",
                    "intent": "order",
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "241646009"}]},
                }
            }
        )
        context["draftOrders"] = drafts
    request = hook_request(HOOK_SCENARIO, hook=hook, recorded=recorded, **context)
    patient = request["context"]["patientId"]
    readings = [{**r, "subject": {"reference": f"Patient/{patient}"}} for r in every_fact(recorded)]
    request["prefetch"]["observations"] = searchset(readings)
    request["prefetch"]["questionnaireResponses"] = None
    first = request["prefetch"]["observations"]["entry"][0]["resource"]
    first["id"] = f"b{MARKER}"
    return json.dumps(request).encode("utf-8")


def feedback_body() -> bytes:
    """The CDS Hooks spec's own ``accepted`` feedback example (one item)."""
    return (ROOT / "tests" / "fixtures" / "cds-hooks" / "feedback-accepted.json").read_bytes()
