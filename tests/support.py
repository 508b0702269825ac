"""Builders and readers for tests: facts in, FHIR out, and the summary a scenario table states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

CODES = json.loads((Path(__file__).parents[1] / "schemas" / "codes.json").read_text())
LOCAL = CODES["localFactSystem"]
SIDES = {s: CODES["laterality"][s] for s in ("left", "right", "both")}
TS = "2026-03-10T09:00:00Z"


def fact_coding(fact: str) -> dict[str, str]:
    """The first (standard where one exists) coding of a fact, as an EHR would send it."""
    c = CODES["facts"][fact]["codings"][0]
    return {"system": c["system"], "code": c["code"]}


def observation(
    fact: str, value: Any = True, *, rid: str | None = None, patient: str = "p1", when: str = TS, **extra: Any
) -> dict[str, Any]:
    """An Observation of ``fact``: bool → valueBoolean, str side → laterality, int → days (UCUM d)."""
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid or f"{fact}-{str(value).lower()}",
        "status": "final",
        "code": {"coding": [fact_coding(fact)]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
    }
    if isinstance(value, bool):
        obs["valueBoolean"] = value
    elif isinstance(value, str) and value in SIDES:
        obs["valueCodeableConcept"] = {"coding": [SIDES[value]]}
    elif isinstance(value, int):
        obs["valueQuantity"] = {
            "value": value,
            "system": "http://unitsofmeasure.org",
            "code": "d",
            "unit": "d",
        }
    obs.update(extra)
    return obs


def bundle_of(*resources: dict[str, Any], timestamp: str = TS) -> dict[str, Any]:
    entries = []
    for i, r in enumerate(resources):
        rid = r.get("id") or f"r{i}"
        entries.append(
            {"fullUrl": f"urn:uuid:00000000-0000-0000-0000-{i:012d}", "resource": {**r, "id": rid}}
        )
    return {"resourceType": "Bundle", "type": "collection", "timestamp": timestamp, "entry": entries}


def facts_bundle(**facts: Any) -> dict[str, Any]:
    """``facts_bundle(facial_numbness=True, facial_numbness_days=20)``: one Observation per fact."""
    return bundle_of(*(observation(name.replace("_", "-"), value) for name, value in facts.items()))


def resources(out: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == rtype]


def summary(out: dict[str, Any]) -> dict[str, Any]:
    """What scenarios.md states of a result: status, overall risk, orders (code, priority)."""
    (ra,) = resources(out, "RiskAssessment")
    order = CODES["risk"]["order"]
    risks = [p["qualitativeRisk"]["coding"][0]["code"] for p in ra["prediction"]]
    orders = sorted(
        ({"code": _order_key(sr), "priority": sr["priority"]} for sr in resources(out, "ServiceRequest")),
        key=lambda o: o["code"],
    )
    return {"status": ra["status"], "risk": max(risks, key=order.index), "orders": orders}


def _order_key(sr: dict[str, Any]) -> str:
    local = [c["code"] for c in sr["code"]["coding"] if c["system"].startswith("https://neckcheck.org/")]
    return local[0]


def validate_fhir(resource: dict[str, Any]) -> None:
    """Raise if ``resource`` is not valid FHIR R4 (fhir.resources R4B models read R4 4.0.1 data)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def all_codings(node: Any) -> list[dict[str, Any]]:
    """Every Coding-shaped object (system + code) anywhere in ``node``."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("system"), str) and isinstance(node.get("code"), str):
            found.append(node)
        for value in node.values():
            found += all_codings(value)
    elif isinstance(node, list):
        for value in node:
            found += all_codings(value)
    return found


def known_codes() -> set[tuple[str, str]]:
    """Every (system, code) pair that codes.json lists anywhere."""
    pairs = {(c["system"], c["code"]) for c in all_codings(CODES)}
    yn = CODES["yesNo"]
    pairs |= {(yn["system"], yn["yes"]), (yn["system"], yn["no"])}
    pairs |= {(CODES["risk"]["system"], r) for r in CODES["risk"]["order"]}
    pairs |= {(CODES["units"]["system"], unit) for unit in CODES["units"]["toDays"]}
    # FHIR's own library-type codes (the CQL Library and its $data-requirements), not clinical codes
    library_type = "http://terminology.hl7.org/CodeSystem/library-type"
    pairs |= {(library_type, "logic-library"), (library_type, "module-definition")}
    # and the Measure's (scoring, type, improvement notation, population codes)
    terminology = "http://terminology.hl7.org/CodeSystem"
    pairs |= {(f"{terminology}/measure-scoring", "proportion"), (f"{terminology}/measure-type", "process")}
    pairs |= {(f"{terminology}/measure-improvement-notation", "increase")}
    populations = ("initial-population", "denominator", "numerator")
    pairs |= {(f"{terminology}/measure-population", code) for code in populations}
    return pairs
