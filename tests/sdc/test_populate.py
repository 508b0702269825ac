"""$populate: the response answers what the data establishes, cites where each answer came from, marks
what holds a preliminary result back - and completing it as is gives the result the data gives."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from service import populate as library_populate
from service.assess import Assessment, Assessor
from service.errors import InvalidInput, NoFacts, NotFound, Unprocessable
from service.output.populated import DERIVATION
from service.sdc.populate import populate
from tests.intake.test_questionnaire_response import QUESTIONNAIRE, item, response
from tests.scenarios import ASSESSED, SCENARIOS
from tests.support import CODES, SIDES, TS, bundle_of, observation, validate_fhir

ASSESSOR = Assessor.load()
NEEDED = f"{CODES['canonicalBase']}/StructureDefinition/needed-for-final"


def answers(qr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """linkId -> the item, for every question (groups flattened)."""
    return {i["linkId"]: i for g in qr["item"] for i in g["item"]}


def completed(qr: dict[str, Any]) -> dict[str, Any]:
    return {**qr, "status": "completed"}


def reassess(qr: dict[str, Any], as_of: dt.datetime) -> Assessment:
    """The completed response alone, assessed at the evaluation time the data was assessed at."""
    return ASSESSOR.run(bundle_of(completed(qr)), as_of=as_of)


def outcome(a: Assessment) -> dict[str, Any]:
    d = a.decision
    return {
        "final": d.final,
        "risk": d.risk,
        "fired": [r.rule.id for r in d.fired],
        "orders": [(o.key, o.priority) for o in d.orders],
        "ask": d.ask_about,
    }


def check_invariant(body: Any) -> dict[str, Any]:
    source = ASSESSOR.run(body)
    qr = populate(body, ASSESSOR).response
    validate_fhir(qr)
    assert qr["status"] == "in-progress"
    if not any("answer" in i for i in answers(qr).values()):
        # every reading too old to use: nothing to pre-fill, and an empty response is no data at all
        assert source.intake.stale and not source.intake.facts, "an empty response from usable data"
        with pytest.raises(NoFacts):
            reassess(qr, source.intake.as_of)
        return qr
    assert outcome(reassess(qr, source.intake.as_of)) == outcome(source)
    return qr


@pytest.mark.parametrize("name", ASSESSED)
def test_completing_the_populated_response_gives_the_scenarios_result(name: str) -> None:
    check_invariant(json.loads((SCENARIOS / name).read_text()))


def _fact_strategy() -> st.SearchStrategy[dict[str, Any]]:
    values = {
        "bool": st.booleans(),
        "side": st.sampled_from(["left", "right", "both"]),
        "days": st.integers(min_value=0, max_value=30),
        "score": st.integers(min_value=0, max_value=10),
    }
    # per fact: not recorded, an Observation, a questionnaire answer, or both (a conflict intake resolves),
    # and the Observation's age: current, stale (rules.md §1, recency) or on a window's edge
    where = st.sampled_from(["none", "observation", "answer", "both"])
    facts = [f for f in ASSESSOR.table.facts.values() if f.kind in values]
    return st.fixed_dictionaries(
        {f.name: st.tuples(where, values[f.kind], values[f.kind], AGES) for f in facts}
    )


DAY = 86400
# ages in seconds before the evaluation time: each window's edges, and anything up to three weeks
AGES = st.one_of(st.sampled_from([0, DAY, DAY + 1, 14 * DAY, 14 * DAY + 1]), st.integers(0, 21 * DAY))
EVALUATED = dt.datetime(2026, 3, 11, 9, tzinfo=dt.UTC)


def _aged(seconds: int) -> str:
    return (EVALUATED - dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _answer(kind: str, value: Any) -> dict[str, Any]:
    if kind == "side":
        return {"valueCoding": SIDES[value]}
    return {"valueBoolean": value} if isinstance(value, bool) else {"valueInteger": value}


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(_fact_strategy(), AGES, st.booleans())
def test_property_completing_the_response_gives_the_datas_result(
    drawn: dict[str, Any], answered_ago: int, unknown_onset: bool
) -> None:
    """Whatever the readings' ages: $populate answers from current readings only, so the completed response
    (authored at the evaluation time) gives the result the data gives."""
    observations, items = [], []
    for name, (where, first, second, age) in drawn.items():
        kind = ASSESSOR.table.facts[name].kind
        if where in ("observation", "both"):
            observations.append(observation(name, first, rid=f"o-{name}", when=_aged(age)))
        if where in ("answer", "both"):
            items.append(item(name, _answer(kind, second)))
    if unknown_onset:  # an onset date beside no duration: intake derives the days from it
        observations.append(
            observation("facial-numbness", True, rid="o-onset", effectivePeriod={"start": "2026-02-20"})
        )
        observations[-1].pop("effectiveDateTime")
    resources = [*observations, *([response(*items, authored=_aged(answered_ago))] if items else [])]
    assume(resources)
    check_invariant(bundle_of(*resources, timestamp=EVALUATED.isoformat().replace("+00:00", "Z")))


def test_only_current_readings_are_pre_filled() -> None:
    """A stale reading (weakness present, 2 days old) is left unanswered and marked needed for a final
    result; a current one (headache, 2 days old, within 14 days) is answered; the stale one is an issue."""
    body = bundle_of(
        observation("weakness", True, rid="old-weakness", when="2026-03-08T09:00:00Z"),
        observation("headache", True, rid="headache", when="2026-03-08T09:00:00Z"),
    )
    populated = populate(body, ASSESSOR)
    answered = {i["linkId"]: i for g in populated.response["item"] for i in g["item"]}
    assert answered["headache"]["answer"][0]["valueBoolean"] is True
    assert "answer" not in answered["weakness"]
    assert answered["weakness"]["extension"][0]["url"].endswith("/StructureDefinition/needed-for-final")
    (issues,) = [p["resource"] for p in populated.parameters["parameter"] if p["name"] == "issues"]
    assert (
        "weakness: recorded 2026-03-08, 48 h before the evaluation time" in issues["issue"][0]["diagnostics"]
    )


def test_every_answer_cites_the_resources_it_came_from() -> None:
    body = bundle_of(
        observation("facial-numbness", True, rid="numb"),
        observation("facial-numbness-side", "left", rid="side"),
        response(item("neck-pain", {"valueBoolean": True}), rid="form"),
    )
    qr = populate(body).response
    cited = {
        name: [
            {e["url"]: e for e in ext["extension"]}
            for ext in i["answer"][0]["extension"]
            if ext["url"] == DERIVATION
        ]
        for name, i in answers(qr).items()
        if "answer" in i
    }
    assert set(cited) == {"facial-numbness", "facial-numbness-side", "neck-pain"}
    assert cited["facial-numbness"][0]["reference"]["valueReference"] == {
        "reference": "Observation/numb",
        "type": "Observation",
    }
    (form,) = cited["neck-pain"]
    assert form["reference"]["valueReference"]["reference"] == "QuestionnaireResponse/form"
    assert form["path"]["valueString"] == "QuestionnaireResponse.repeat(item).where(linkId='neck-pain')"
    assert answers(qr)["facial-numbness-side"]["answer"][0]["valueCoding"] == SIDES["left"]


def test_unknown_facts_are_unanswered_and_those_holding_the_result_back_are_marked() -> None:
    body = json.loads((SCENARIOS / "S5-observations.json").read_text())
    qr = populate(body).response
    source = ASSESSOR.run(body)
    assert source.decision.ask_about  # S5 is preliminary: the urgent signs were not assessed
    for name, question in answers(qr).items():
        marked = [e for e in question.get("extension", []) if e["url"] == NEEDED]
        if name in source.decision.ask_about:
            assert marked == [{"url": NEEDED, "valueBoolean": True}] and "answer" not in question
        else:
            assert not marked
        known = source.intake.facts.get(name)
        assert ("answer" in question) == (known is not None and known.value is not None)


def test_the_response_follows_the_questionnaire_order_and_names_it() -> None:
    qr = populate(bundle_of(observation("weakness", True))).response
    assert qr["questionnaire"] == f"{QUESTIONNAIRE}|1.1.0"
    assert [g["linkId"] for g in qr["item"]] == [
        "group-urgent",
        "group-face",
        "group-associated",
        "group-neck",
    ]
    assert (qr["subject"], qr["authored"]) == ({"reference": "Patient/p1"}, TS)


def test_an_explicitly_unknown_duration_keeps_its_onset_unanswered() -> None:
    numb = observation("facial-numbness", True, rid="n", effectivePeriod={"start": "2026-02-01"})
    numb.pop("effectiveDateTime")
    unknown_days = observation("facial-numbness-days", 0, rid="d", dataAbsentReason={"text": "not known"})
    unknown_days.pop("valueQuantity")
    body = bundle_of(numb, unknown_days)
    qr = check_invariant(body)
    assert "answer" not in answers(qr)["facial-numbness-onset"]


def test_ignored_entries_are_the_issues() -> None:
    body = bundle_of(observation("weakness", True), {"resourceType": "Basic", "id": "b"})
    (resp, issues) = populate(body).parameters["parameter"]
    assert (resp["name"], issues["name"]) == ("response", "issues")
    assert "Basic not read by neckcheck" in issues["resource"]["issue"][0]["diagnostics"]
    assert [p["name"] for p in library_populate(bundle_of(observation("weakness", True)))["parameter"]] == [
        "response"
    ]


def parameters(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parts)}


BUNDLE = {"name": "bundle", "resource": bundle_of(observation("weakness", True))}


@pytest.mark.parametrize(
    ("parts", "error", "message"),
    [
        (
            [{"name": "subject", "valueReference": {"reference": "Patient/p2"}}, BUNDLE],
            Unprocessable,
            "Patient/p1",
        ),
        ([{"name": "subject", "valueReference": {}}, BUNDLE], Unprocessable, "names no patient"),
        ([{"name": "subject", "valueString": "Patient/p1"}, BUNDLE], InvalidInput, "valueReference"),
        (
            [{"name": "questionnaire", "valueCanonical": "http://x.org/Questionnaire/q"}, BUNDLE],
            NotFound,
            "x.org",
        ),
        ([{"name": "questionnaire", "valueCanonical": f"{QUESTIONNAIRE}|0.9"}, BUNDLE], NotFound, "1.1.0"),
        ([{"name": "questionnaire", "valueBoolean": True}, BUNDLE], InvalidInput, "valueCanonical"),
        ([{"name": "subject", "valueReference": {"reference": "Patient/p1"}}], InvalidInput, "bundle"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(
    parts: list[dict[str, Any]], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        populate(parameters(*parts))


@pytest.mark.parametrize(
    "parts",
    [
        [{"name": "subject", "valueReference": {"reference": "https://ehr.example/fhir/Patient/p1"}}, BUNDLE],
        [{"name": "questionnaire", "valueCanonical": f"{QUESTIONNAIRE}|1.1.0"}, BUNDLE],
        [{"name": "canonical", "valueUri": QUESTIONNAIRE}, BUNDLE],
    ],
)
def test_matching_subject_and_canonical_are_accepted(parts: list[dict[str, Any]]) -> None:
    assert populate(parameters(*parts)).response["subject"] == {"reference": "Patient/p1"}
