"""Hook requests built from the CDS Hooks spec's own example, carrying a scenario's data as prefetch."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

from tests.scenarios import SCENARIOS, recorded_at

CDS_FIXTURES = Path(__file__).parents[1] / "fixtures" / "cds-hooks"
SPEC_REQUEST = json.loads((CDS_FIXTURES / "hook-request-patient-view.json").read_text())


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def scenario_resources(name: str, recorded: dt.datetime | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(patient id, resources) of a scenario input Bundle; ``recorded``: as if taken then (``recorded_at``),
    for a server that assesses at its own clock."""
    bundle = json.loads((SCENARIOS / name).read_text())
    resources = [e["resource"] for e in bundle["entry"]]
    if recorded is not None:
        resources = recorded_at(resources, recorded)
    return resources[0]["subject"]["reference"].split("/")[1], resources


def hook_request(
    name: str,
    hook: str = "patient-view",
    prefetch: bool = True,
    recorded: dt.datetime | None = None,
    **context: Any,
) -> dict[str, Any]:
    """The spec's example request, for the scenario's patient, with the scenario's data as prefetch
    (``recorded``: as if taken then, see ``scenario_resources``)."""
    request = copy.deepcopy(SPEC_REQUEST)
    request["hook"] = hook
    patient_id, resources = scenario_resources(name, recorded)
    request["context"] = {**request["context"], "patientId": patient_id, **context}
    del request["prefetch"]
    if prefetch:
        observations = [r for r in resources if r["resourceType"] == "Observation"]
        responses = [r for r in resources if r["resourceType"] == "QuestionnaireResponse"]
        request["prefetch"] = {
            "patient": {"resourceType": "Patient", "id": patient_id},
            "observations": searchset(observations) if observations else None,
            "questionnaireResponses": searchset(responses) if responses else None,
        }
    return request


def numbered_hook_request(name: str, number: int, recorded: dt.datetime | None = None) -> dict[str, Any]:
    """The scenario's hook request with its first Observation renamed: another input, so another card
    uuid (a card's uuid is derived from the input and the time, and calls within a second share it)."""
    request = hook_request(name, recorded=recorded)
    first = request["prefetch"]["observations"]["entry"][0]["resource"]
    first["id"] = f"{first['id']}-{number}"
    return request


def feedback_on(card: str, outcome: str = "overridden") -> dict[str, Any]:
    """A CDS Hooks 2.0.1 §Feedback request about one card."""
    item: dict[str, Any] = {"card": card, "outcome": outcome, "outcomeTimestamp": "2026-11-02T10:00:00Z"}
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": "x"}]
    return {"feedback": [item]}
