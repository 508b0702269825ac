"""The Assessment's face (service/assess.py): what every front end reads of an evaluation, agreeing with the
FHIR renderings it comes with."""

from __future__ import annotations

import json

from service.assess import Assessor
from tests.scenarios import SCENARIOS
from tests.support import bundle_of, observation

ASSESSOR = Assessor.load()


def test_the_face_says_what_the_risk_assessment_says() -> None:
    result = ASSESSOR.run(json.loads((SCENARIOS / "S7-observations.json").read_text()))
    ra = result.risk_assessment
    assert (result.status, result.subject) == (ra["status"], ra["subject"]["reference"])
    assert result.as_of_source == "Bundle.timestamp" and result.rule_set == "neckcheck-escalation 1.1.0"
    outcomes = [p["outcome"]["text"] for p in ra["prediction"]]
    assert [r.outcome for r in result.rules_fired] == outcomes
    assert [o.resource for o in result.orders] == result.service_requests
    for order in result.orders:  # each order is its own ServiceRequest, with its codes
        assert order.resource["code"]["coding"] == list(order.codes)
        assert order.resource["priority"] == order.priority
    cited = {b["reference"] for b in ra["basis"]}
    assert cited == {s.fhir_reference["reference"] for f in result.findings for s in f.sources}


def test_sources_cite_the_resource_and_item_with_their_time() -> None:
    result = ASSESSOR.run(json.loads((SCENARIOS / "S1-questionnaire.json").read_text()))
    (numbness,) = [f for f in result.findings if f.fact == "facial-numbness"]
    (source,) = numbness.sources
    assert source.resource_type == "QuestionnaireResponse" and source.item == "facial-numbness"
    assert source.fhir_reference == {"reference": source.reference, "type": "QuestionnaireResponse"}
    assert numbness.time is not None and numbness.time.isoformat() == "2026-03-10T09:00:00+00:00"


def test_a_question_says_when_an_old_reading_said_present() -> None:
    old = observation("weakness", True, when="2026-03-01T09:00:00Z")
    result = ASSESSOR.run(bundle_of(old, observation("facial-numbness", False)))
    asked = {q.fact: q for q in result.to_ask}
    assert asked["weakness"].recorded_present is not None
    assert asked["weakness"].recorded_present.isoformat() == "2026-03-01"
    assert asked["vision-change"].recorded_present is None
    assert result.stale_facts == ("weakness",) and "ask again" in result.why_preliminary
    assert [n.where for n in result.not_used] == ["Bundle.entry[0].resource"]
