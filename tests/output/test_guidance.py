"""The GuidanceResponse in every $assess output: which module ran, complete or not, and what data it needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service import assess
from service.rules.table import load_table
from tests.intake.test_questionnaire_response import item, response
from tests.scenarios import ASSESSED, EXPECTED, SCENARIOS
from tests.support import CODES, bundle_of, facts_bundle, resources, validate_fhir

TABLE = load_table()
BASE = CODES["canonicalBase"]
ITEM_EXT = f"{BASE}/StructureDefinition/questionnaire-item"


def guidance(out: dict[str, Any]) -> dict[str, Any]:
    (gr,) = resources(out, "GuidanceResponse")
    return gr


def contained(gr: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    (found,) = [c for c in gr["contained"] if f"#{c['id']}" == ref["reference"]]
    return found


def asked(gr: dict[str, Any]) -> list[str]:
    """The linkIds of the data requirements, read from the extension."""
    out = []
    for req in gr.get("dataRequirement", []):
        (ext,) = [e for e in req["extension"] if e["url"] == ITEM_EXT]
        parts = {e["url"]: e for e in ext["extension"]}
        assert parts["questionnaire"]["valueCanonical"] == f"{BASE}/Questionnaire/neckcheck-screen|1.1.0"
        out.append(parts["linkId"]["valueString"])
    return out


@pytest.mark.parametrize("name", ASSESSED)
def test_every_scenario_has_one_guidance_response_matching_the_result(name: str) -> None:
    out = assess(json.loads((SCENARIOS / name).read_text()))
    gr, (ra,) = guidance(out), resources(out, "RiskAssessment")
    validate_fhir(gr)
    assert gr["moduleCanonical"] == f"{BASE}/PlanDefinition/neckcheck-escalation|{TABLE.version}"
    assert gr["status"] == {"final": "success", "preliminary": "data-required"}[EXPECTED[name]["status"]]
    assert (gr["subject"], gr["occurrenceDateTime"]) == (ra["subject"], ra["occurrenceDateTime"])
    assert gr["requestIdentifier"]["system"] == f"{BASE}/identifier/request"
    params = contained(gr, gr["outputParameters"])
    full_urls = {e["fullUrl"]: e["resource"] for e in out["entry"]}
    named = {
        (p["name"], full_urls[p["valueReference"]["reference"]]["resourceType"]) for p in params["parameter"]
    }
    orders = resources(out, "ServiceRequest")
    expected = {("riskAssessment", "RiskAssessment")}
    if orders:
        expected.add(("serviceRequest", "ServiceRequest"))
    assert named == expected
    assert len(params["parameter"]) == 1 + len(orders)


def test_preliminary_names_one_data_requirement_per_fact_to_ask_with_its_codes() -> None:
    out = assess(facts_bundle(facial_numbness=True, facial_numbness_side="both"))
    gr = guidance(out)
    assert gr["status"] == "data-required"
    expected = ["vision-change", "slurred-speech", "weakness", "symptoms-worsening", "headache", "dizziness"]
    expected += ["facial-numbness-days"]
    assert sorted(asked(gr)) == sorted(expected)
    by_link = dict(zip(asked(gr), gr["dataRequirement"], strict=True))
    weakness = by_link["weakness"]
    assert weakness["type"] == "Observation"
    (code_filter,) = weakness["codeFilter"]
    assert code_filter["path"] == "code"
    assert [c["code"] for c in code_filter["code"]] == ["26544005", "weakness"]  # standard first
    assert "ask before relying on this result" in gr["note"][0]["text"]


def test_final_result_is_success_with_no_data_requirement() -> None:
    gr = guidance(assess(facts_bundle(weakness=True)))
    assert gr["status"] == "success"
    assert "dataRequirement" not in gr and "note" not in gr


def test_an_unfinished_questionnaire_is_data_required_even_with_nothing_to_name() -> None:
    urgent = [item(name, {"valueBoolean": False}) for name in ("vision-change", "slurred-speech", "weakness")]
    qr = response(*urgent, item("symptoms-worsening", {"valueBoolean": False}), status="in-progress")
    gr = guidance(assess(bundle_of(qr)))
    assert gr["status"] == "data-required"
    assert "still in progress" in gr["note"][0]["text"]


def test_ignored_entries_are_an_evaluation_message() -> None:
    unrelated = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}
    bundle = facts_bundle(weakness=True)
    bundle["entry"].append({"resource": unrelated})
    out = assess(bundle)
    gr = guidance(out)
    (outcome,) = resources(out, "OperationOutcome")
    assert gr["evaluationMessage"] == [{"reference": f"urn:uuid:{outcome['id']}", "type": "OperationOutcome"}]

    tx = assess(bundle, output="transaction")
    gr = guidance(tx)
    notes = contained(gr, gr["evaluationMessage"][0])
    assert notes["resourceType"] == "OperationOutcome"
    assert notes["issue"] == outcome["issue"]
    assert not resources(tx, "OperationOutcome")
    validate_fhir(gr)


def test_in_a_transaction_it_is_a_conditional_create_on_its_identifier() -> None:
    tx = assess(facts_bundle(facial_numbness=True), output="transaction")
    (entry,) = [e for e in tx["entry"] if e["resource"]["resourceType"] == "GuidanceResponse"]
    ident = entry["resource"]["identifier"][0]
    assert ident["system"] == f"{BASE}/identifier/guidance-response"
    assert entry["request"]["ifNoneExist"] == f"identifier={ident['system']}|{ident['value']}"
    assert "id" not in entry["resource"]
    full_urls = {e["fullUrl"] for e in tx["entry"]}
    params = contained(entry["resource"], entry["resource"]["outputParameters"])
    assert {p["valueReference"]["reference"] for p in params["parameter"]} <= full_urls
