"""Every public scenario end to end through HTTP: expected status, risk and orders; golden output bytes.

After a deliberate change to the output, ``make golden`` (NECKCHECK_WRITE_GOLDEN=1) rewrites each golden file
that differs from the answer - and that test still fails, so a rewrite is never a passing run: review
``git diff tests/fixtures/golden``, then run the tests again against the new files.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml
from flask.testing import FlaskClient

from tests.openapi_contract import SPEC_PATH
from tests.scenarios import ASSESSED, EXPECTED, GOLDEN, REFUSED, body
from tests.support import summary

FHIR = "application/fhir+json"


@pytest.mark.parametrize("name", ASSESSED)
def test_scenario_result(client: FlaskClient, name: str) -> None:
    response = client.post("/fhir/$assess", data=body(name), content_type=FHIR)
    assert response.status_code == 200
    assert response.mimetype == FHIR
    assert summary(response.get_json()) == EXPECTED[name]


@pytest.mark.parametrize("name", REFUSED)
def test_refused_scenario(client: FlaskClient, name: str) -> None:
    response = client.post("/fhir/$assess", data=body(name), content_type=FHIR)
    assert response.status_code == EXPECTED[name]["http"]
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert all(issue["severity"] == "error" and issue["diagnostics"] for issue in outcome["issue"])


def test_two_patients_names_the_entries_that_disagree(client: FlaskClient) -> None:
    outcome = client.post("/fhir/$assess", data=body("S14-two-patients.json"), content_type=FHIR).get_json()
    text = json.dumps(outcome)
    assert "Patient/scn-14a" in text and "Patient/scn-14b" in text
    where = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert where == ["Bundle.entry[0].resource", "Bundle.entry[1].resource"]


@pytest.mark.parametrize("name", ASSESSED)
def test_golden_output(client: FlaskClient, name: str) -> None:
    """The whole answer, byte for byte: any change to the output shows up here for review."""
    got = client.post("/fhir/$assess", data=body(name), content_type=FHIR).data
    pretty = json.dumps(json.loads(got), indent=1, ensure_ascii=False) + "\n"
    golden = GOLDEN / name
    before = golden.read_text(encoding="utf-8") if golden.exists() else None
    if pretty != before and os.environ.get("NECKCHECK_WRITE_GOLDEN"):
        golden.write_text(pretty, encoding="utf-8")
        pytest.fail(f"{golden} rewritten: review `git diff tests/fixtures/golden`, then run the tests again")
    assert before is not None, f"no golden file {golden}: run make golden"
    assert pretty == before


def test_every_golden_file_belongs_to_an_assessed_scenario() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir()) == ASSESSED


@pytest.mark.parametrize("name", ASSESSED)
def test_same_input_same_bytes(client: FlaskClient, name: str) -> None:
    first = client.post("/fhir/$assess", data=body(name), content_type=FHIR).data
    again = client.post("/fhir/$assess", data=body(name), content_type=FHIR).data
    assert first == again


def test_s5_preliminary_names_the_four_urgent_signs(client: FlaskClient) -> None:
    for name in ("S5-observations.json", "S5-questionnaire.json"):
        out = client.post("/fhir/$assess", data=body(name), content_type=FHIR).get_json()
        ra = out["entry"][0]["resource"]
        notes = " ".join(n["text"] for n in ra["note"])
        assert "vision change, slurred speech, weakness and worsening were not assessed" in notes
        assert "ask before relying on this result" in ra["prediction"][0]["rationale"]


@pytest.mark.parametrize("name", ["S12-observations.json", "S12-questionnaire.json"])
def test_s12_the_older_weakness_is_stale_not_a_resolved_conflict(client: FlaskClient, name: str) -> None:
    """Contract 1.1.0: the 9-day-old "weakness present" is older than the 24 h window for urgent signs, so
    it is listed as not used; the 24 h old "absent" alone decides, and there is no conflict to resolve."""
    out = client.post("/fhir/$assess", data=body(name), content_type=FHIR).get_json()
    ra = out["entry"][0]["resource"]
    rationale = ra["prediction"][0]["rationale"]
    assert "Conflicting records" not in rationale and "note" not in ra
    assert "weakness present (recorded 2026-03-01, older than 24 h)" in rationale
    (outcome,) = [e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "OperationOutcome"]
    (issue,) = outcome["issue"]
    assert "weakness: recorded 2026-03-01, 9 days before the evaluation time" in issue["diagnostics"]
    assert issue["diagnostics"].endswith("older than the 24 h window: stale, not used")


@pytest.mark.parametrize("name", ["S13-observations.json", "S13-questionnaire.json"])
def test_s13_entered_in_error_is_listed_as_not_used(client: FlaskClient, name: str) -> None:
    out = client.post("/fhir/$assess", data=body(name), content_type=FHIR).get_json()
    (outcome,) = [e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "OperationOutcome"]
    assert any(
        "entered in error" in i["diagnostics"] or "entered-in-error" in i["diagnostics"]
        for i in outcome["issue"]
    )
    assert all(i["severity"] == "information" for i in outcome["issue"])


def test_the_openapi_example_answer_is_the_s1_golden_output() -> None:
    """openapi.yaml shows S1's answer; it is kept equal to the golden file so the contract never shows an
    answer the service no longer gives."""
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    example = spec["components"]["examples"]["S1Response"]["value"]
    assert example == json.loads((GOLDEN / "S1-observations.json").read_text(encoding="utf-8"))
