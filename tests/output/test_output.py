"""Every output resource is valid FHIR R4, uses only codes from codes.json, and cites its evidence."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import orjson
import pytest

from service import assess
from service.errors import InvalidInput
from service.ids import content_hash
from tests.scenarios import ASSESSED, SCENARIOS
from tests.support import all_codings, facts_bundle, known_codes, resources, validate_fhir

OUTPUTS = [(name, mode) for name in ASSESSED for mode in ("collection", "transaction")]


def run(name: str, output: str = "collection") -> dict[str, Any]:
    return assess(json.loads((SCENARIOS / name).read_text()), output=output)


@pytest.mark.parametrize(("name", "mode"), OUTPUTS)
def test_every_output_validates_as_fhir_r4(name: str, mode: str) -> None:
    out = run(name, mode)
    validate_fhir(out)
    for entry in out["entry"]:
        validate_fhir(entry["resource"])


@pytest.mark.parametrize("name", ASSESSED)
def test_output_uses_only_codes_from_codes_json(name: str) -> None:
    listed = known_codes()
    used = {(c["system"], c["code"]) for c in all_codings(run(name))}
    assert used <= listed, used - listed


def test_service_requests_are_draft_proposals_citing_their_evidence() -> None:
    out = run("S1-observations.json")
    (ra,) = resources(out, "RiskAssessment")
    for sr in resources(out, "ServiceRequest"):
        assert (sr["status"], sr["intent"]) == ("draft", "proposal")
        assert sr["authoredOn"] == ra["occurrenceDateTime"] == "2026-03-10T09:00:00Z"
        assert sr["subject"] == ra["subject"] == {"reference": "Patient/scn-1"}
        assert sr["instantiatesCanonical"] == [
            "https://neckcheck.org/fhir/PlanDefinition/neckcheck-escalation|1.1.0"
        ]
        cited = {r["reference"] for r in sr["reasonReference"]}
        assert cited <= {b["reference"] for b in ra["basis"]}
        assert {"type": "RiskAssessment", "identifier": ra["identifier"][0]} in sr["supportingInfo"]


def test_mri_is_one_order_naming_ct_as_the_alternative() -> None:
    out = run("S1-observations.json")
    (mri,) = [
        sr for sr in resources(out, "ServiceRequest") if sr["category"][0]["coding"][0]["code"] == "363679005"
    ]
    codes = [c["code"] for c in mri["code"]["coding"]]
    assert codes == ["mri-brain", "816077007"]
    assert "CT of the brain" in mri["note"][0]["text"]


def test_neurology_referral_emits_the_generic_code_after_the_local_one_with_the_neurologist() -> None:
    out = run("S2-observations.json")
    (referral,) = resources(out, "ServiceRequest")
    assert [c["code"] for c in referral["code"]["coding"]] == ["neurology-referral", "306206005"]
    assert referral["performerType"]["coding"][0]["code"] == "56397003"
    assert referral["priority"] == "routine"


def test_questionnaire_response_is_supporting_info() -> None:
    out = run("S1-questionnaire.json")
    for sr in resources(out, "ServiceRequest"):
        assert any(r.get("type") == "QuestionnaireResponse" for r in sr["supportingInfo"])
        assert "reasonReference" not in sr  # only Observations can be a reason


def test_transaction_entries_are_conditional_creates_on_the_identifier() -> None:
    out = run("S7-observations.json", "transaction")
    assert out["type"] == "transaction"
    for entry in out["entry"]:
        ident = entry["resource"]["identifier"][0]
        assert entry["request"] == {
            "method": "POST",
            "url": entry["resource"]["resourceType"],
            "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
        }
        assert entry["fullUrl"].startswith("urn:uuid:")


def test_identifiers_follow_input_rule_version_and_as_of() -> None:
    bundle = facts_bundle(weakness=True)
    first = assess(bundle)
    assert assess(bundle) == first
    later = assess(bundle, as_of=dt.datetime(2026, 3, 11, tzinfo=dt.UTC))
    assert later["entry"][0]["resource"]["identifier"] != first["entry"][0]["resource"]["identifier"]
    other = assess(facts_bundle(weakness=True, vision_change=False))
    assert other["entry"][0]["resource"]["identifier"] != first["entry"][0]["resource"]["identifier"]


def test_the_input_hash_is_the_sha256_of_the_canonical_json_whatever_its_size() -> None:
    """content_hash feeds hashlib in pieces (it keeps the GIL that way): the digest is the whole input's."""
    for size in (0, 2046, 2047, 2048, 5000, 100_000):
        bundle = {"resourceType": "Bundle", "type": "collection", "z": "x" * size, "a": [1, "é"]}
        canonical = orjson.dumps(bundle, option=orjson.OPT_SORT_KEYS)
        assert content_hash(bundle) == hashlib.sha256(canonical).hexdigest()


def test_as_of_is_echoed_and_a_naive_as_of_is_utc() -> None:
    out = assess(facts_bundle(weakness=True), as_of=dt.datetime(2026, 5, 1, 8, 30))
    assert out["entry"][0]["resource"]["occurrenceDateTime"] == "2026-05-01T08:30:00Z"


def test_unknown_output_mode_is_a_400() -> None:
    with pytest.raises(InvalidInput, match="_output"):
        assess(facts_bundle(weakness=True), output="batch")


def test_no_rule_fired_gives_one_prediction_with_the_reassess_advice() -> None:
    out = run("S10-observations.json")
    (ra,) = resources(out, "RiskAssessment")
    (prediction,) = ra["prediction"]
    assert prediction["qualitativeRisk"]["coding"][0]["code"] == "low"
    assert "Re-assess if numbness lasts beyond 14 days or any urgent sign appears" in prediction["rationale"]


def test_rationale_names_rule_facts_guideline_and_causes_to_rule_out() -> None:
    out = run("S4-observations.json")
    rationale = resources(out, "RiskAssessment")[0]["prediction"][0]["rationale"]
    assert "imaging-referral" in rationale
    assert "facial numbness present" in rationale and "headache present" in rationale
    assert "Article guideline 3" in rationale
    assert "to rule out (not a diagnosis)" in rationale and "stroke" in rationale


def test_informational_facts_are_shown_not_used() -> None:
    out = run("S6-observations.json")
    notes = " ".join(n["text"] for n in resources(out, "RiskAssessment")[0]["note"])
    assert "neck pain severity 6/10" in notes
