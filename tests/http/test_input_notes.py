"""What the output says of input it did not use: later-dated evidence (rules.md §1, contract 1.0.1) and
ignored entries, in the collection's informational OperationOutcome and the transaction's RiskAssessment."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from tests.support import bundle_of, observation, resources, validate_fhir

FHIR = "application/fhir+json"
MAY = "2026-05-01T09:00:00Z"


def assess(client: FlaskClient, body: dict[str, Any], query: str = "") -> dict[str, Any]:
    response = client.post(f"/fhir/$assess{query}", data=json.dumps(body), content_type=FHIR)
    assert response.status_code == 200, response.get_data(as_text=True)
    out: dict[str, Any] = response.get_json()
    validate_fhir(out)
    return out


def parameters(bundle: dict[str, Any], as_of: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "bundle", "resource": bundle}, {"name": "asOf", "valueDateTime": as_of}],
    }


def notes_of(out: dict[str, Any]) -> list[str]:
    (outcome,) = resources(out, "OperationOutcome")
    return [f"{i['expression'][0]}: {i['diagnostics']}" for i in outcome["issue"]]


def test_an_explicit_as_of_does_not_use_a_weakness_recorded_after_it(client: FlaskClient) -> None:
    """The issue's case: a weakness Observation dated May, assessed asOf April."""
    data = bundle_of(observation("weakness", True, when=MAY), observation("headache", True))
    out = assess(client, parameters(data, "2026-04-01T00:00:00Z"))
    (ra,) = resources(out, "RiskAssessment")
    assert ra["prediction"][0]["qualitativeRisk"]["coding"][0]["code"] != "high"
    assert "Observation/weakness-true" not in json.dumps(ra.get("basis", []))
    assert any("Bundle.entry[0].resource: dated 2026-05-01" in n and "not used" in n for n in notes_of(out))


def test_a_timestamp_before_the_evidence_still_uses_it_and_says_so(client: FlaskClient) -> None:
    data = bundle_of(observation("weakness", True, when=MAY), timestamp="2026-04-01T00:00:00Z")
    out = assess(client, data)
    (ra,) = resources(out, "RiskAssessment")
    assert ra["prediction"][0]["qualitativeRisk"]["coding"][0]["code"] == "high"
    assert any("(Bundle.timestamp): used all the same" in n for n in notes_of(out))


def test_the_transaction_carries_the_notes_on_the_risk_assessment(client: FlaskClient) -> None:
    unrelated = {"resourceType": "Basic", "id": "b1", "code": {"text": "something else"}}
    data = bundle_of(observation("weakness", True), unrelated)
    collection = assess(client, data)
    transaction = assess(client, data, "?_output=transaction")
    assert [e["resource"]["resourceType"] for e in transaction["entry"]] == [
        "RiskAssessment",
        "ServiceRequest",
        "GuidanceResponse",  # containing the same notes as an OperationOutcome (test_guidance.py)
    ]
    ra = transaction["entry"][0]["resource"]
    (note,) = [n["text"] for n in ra["note"] if n["text"].startswith("Input not used")]
    assert "Bundle.entry[1].resource: Basic not read by neckcheck" in note
    assert notes_of(collection) == ["Bundle.entry[1].resource: Basic not read by neckcheck"]


def test_a_thousand_ignored_entries_make_one_bounded_note(client: FlaskClient) -> None:
    filler = [{"resourceType": "Basic", "id": f"b{i}"} for i in range(900)]
    out = assess(client, bundle_of(observation("weakness", True), *filler), "?_output=transaction")
    (note,) = [n["text"] for n in out["entry"][0]["resource"]["note"] if n["text"].startswith("Input not")]
    assert note.startswith("Input not used, or not used as given (900): ")
    assert note.endswith("; and 850 more.") and note.count("not read by neckcheck") == 50
