"""The SDC-grade Questionnaire: layout (urgent signs first, enableWhen), codes, SDC extensions, and the
guarantee that the form never hides a fact a rule needs (derived from the rule table, not restated here)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings

from service.assess import Assessor
from service.codebook import load_codebook
from service.errors import ConfigError
from service.output.questionnaire import (
    LAYOUT,
    MAX_VALUE,
    MIN_VALUE,
    OBSERVATION_EXTRACT,
    OBSERVATION_LINK_PERIOD,
    UNIT,
    Layout,
    check_layout,
    questionnaire,
)
from service.rules.decide import Decision, decide
from service.rules.table import DEFAULT_TABLE, Group, Leaf, RuleTable, _table, load_table
from tests.rules.test_properties import UNKNOWN, as_facts, fact_values
from tests.support import CODES, bundle_of, validate_fhir

TABLE = load_table()
BOOK = load_codebook()
Q = questionnaire(TABLE, BOOK)
RAW = json.loads(DEFAULT_TABLE.read_text())


def items(q: dict[str, Any] = Q) -> dict[str, dict[str, Any]]:
    return {i["linkId"]: i for g in q["item"] for i in g["item"]}


def ext(item: dict[str, Any], url: str) -> dict[str, Any]:
    (found,) = [e for e in item.get("extension", []) if e["url"] == url]
    return found


def test_valid_fhir_r4_with_url_version_status() -> None:
    validate_fhir(Q)
    assert Q["url"] == f"{CODES['canonicalBase']}/Questionnaire/neckcheck-screen"
    assert (Q["version"], Q["status"]) == (TABLE.version, "active")


def test_urgent_signs_are_asked_first() -> None:
    urgent = _facts(TABLE.rule("urgent-signs").when)
    first = Q["item"][0]
    assert {i["linkId"] for i in first["item"]} == urgent
    assert [g["linkId"] for g in Q["item"]] == list(LAYOUT.group_order)


def _facts(condition: Leaf | Group) -> set[str]:
    if isinstance(condition, Leaf):
        return {condition.fact}
    return set().union(*(_facts(t) for t in condition.terms))


def test_groups_keep_the_rule_tables_membership() -> None:
    for group in Q["item"]:
        (source,) = [g for g in TABLE.groups if g.link_id == group["linkId"]]
        assert [i["linkId"] for i in group["item"]] == list(source.facts)


@pytest.mark.parametrize(
    ("gate", "shown"),
    [
        (
            "facial-numbness",
            {
                "facial-numbness-side",
                "facial-numbness-days",
                "facial-numbness-onset",
                "headache",
                "dizziness",
            },
        ),
        ("neck-pain", {"arm-pain-radiating", "arm-hand-numbness"}),
    ],
)
def test_enable_when_shows_follow_up_questions_only_after_yes(gate: str, shown: set[str]) -> None:
    gated = {name for name, i in items().items() if i.get("enableWhen", [{}])[0].get("question") == gate}
    assert gated == shown
    for name in shown:
        item = items()[name]
        assert item["enableWhen"] == [{"question": gate, "operator": "=", "answerBoolean": True}]
        assert "enableBehavior" not in item  # one condition: R4 que-12 needs it only for two or more
        assert items()[gate]["type"] == "boolean"  # answerBoolean matches the gate's answer type


def test_every_item_carries_all_its_codes_standard_first() -> None:
    for name, item in items().items():
        listed = [{k: c[k] for k in ("system", "code", "display")} for c in CODES["facts"][name]["codings"]]
        assert sorted(map(json.dumps, item["code"])) == sorted(map(json.dumps, listed))
        systems = [c["system"] for c in item["code"]]
        assert systems[-1] == CODES["localFactSystem"]
        assert CODES["localFactSystem"] not in systems[:-1]


URGENT = ("vision-change", "slurred-speech", "weakness", "symptoms-worsening")


def test_items_pre_populate_from_and_extract_to_observations() -> None:
    """Pre-filled only from what $assess would use: each item's link period is its fact's lookback."""
    ucum = "http://unitsofmeasure.org"
    for name, item in items().items():
        period = ext(item, OBSERVATION_LINK_PERIOD)["valueDuration"]
        if name in URGENT:
            assert period == {"value": 24, "unit": "hours", "system": ucum, "code": "h"}
        else:
            assert period == {"value": 14, "unit": "days", "system": ucum, "code": "d"}
        assert ext(item, OBSERVATION_EXTRACT) == {"url": OBSERVATION_EXTRACT, "valueBoolean": True}
    assert Q["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-pop-obsn",
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-extr-obsn",
    ]


def test_field_details_unit_and_ranges() -> None:
    days, severity = items()["facial-numbness-days"], items()["neck-pain-severity"]
    assert ext(days, UNIT)["valueCoding"] == {"system": "http://unitsofmeasure.org", "code": "d"}
    assert days["type"] == "integer" and ext(days, MIN_VALUE)["valueInteger"] == 0
    assert severity["type"] == "integer"
    assert (ext(severity, MIN_VALUE)["valueInteger"], ext(severity, MAX_VALUE)["valueInteger"]) == (0, 10)
    assert items()["facial-numbness-onset"]["type"] == "date"


def _answer(item: dict[str, Any], value: Any) -> dict[str, Any]:
    if item["type"] == "boolean":
        return {"valueBoolean": value}
    if item["type"] == "choice":
        return {
            "valueCoding": next(o["valueCoding"] for o in item["answerOption"] if o["valueCoding"] == value)
        }
    return {"valueInteger": value} if item["type"] == "integer" else {"valueDate": value}


def response_to(q: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A QuestionnaireResponse shaped exactly like ``q`` (groups and all), as a form engine writes it."""
    groups = []
    for group in q["item"]:
        answered = [
            {"linkId": i["linkId"], "answer": [_answer(i, values[i["linkId"]])]}
            for i in group["item"]
            if i["linkId"] in values
        ]
        if answered:
            groups.append({"linkId": group["linkId"], "item": answered})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "from-the-form",
        "questionnaire": f"{q['url']}|{q['version']}",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "authored": "2026-03-10T09:00:00Z",
        "item": groups,
    }


def test_a_response_to_this_questionnaire_is_read_by_the_intake() -> None:
    left = CODES["laterality"]["left"]
    values = {name: True for name, i in items().items() if i["type"] == "boolean"}
    values |= {"facial-numbness-side": left, "facial-numbness-days": 20, "neck-pain-severity": 6}
    values |= {"facial-numbness-onset": "2026-02-10"}
    qr = response_to(Q, values)
    validate_fhir(qr)
    result = Assessor.load().run(bundle_of(qr))
    assert set(result.intake.facts) == set(TABLE.facts)
    assert result.intake.facts["facial-numbness-side"].value == "left"
    assert result.intake.facts["facial-numbness-days"].value == 20
    assert result.decision.final and result.decision.risk == "high"


def test_the_packaged_layout_hides_nothing_a_rule_needs() -> None:
    check_layout(TABLE)  # also run by Assessor.load at start-up


def _with_rule_using_headache_alone() -> RuleTable:
    raw = copy.deepcopy(RAW)
    (imaging,) = [r for r in raw["rules"] if r["id"] == "imaging-referral"]
    imaging["when"] = {"any": [{"fact": "headache", "is": "present"}, imaging["when"]]}
    return _table(raw)


@pytest.mark.parametrize(
    ("table", "layout", "message"),
    [
        (_with_rule_using_headache_alone(), LAYOUT, "without requiring 'facial-numbness' present"),
        (TABLE, Layout(LAYOUT.group_order[1:], LAYOUT.gates), "orders groups"),
        (
            TABLE,
            Layout(LAYOUT.group_order, {**LAYOUT.gates, "weakness": "facial-numbness"}),
            "without requiring",
        ),
        (
            TABLE,
            Layout(LAYOUT.group_order, {**LAYOUT.gates, "neck-pain": "facial-numbness"}),
            "ungated boolean",
        ),
        (
            TABLE,
            Layout(LAYOUT.group_order, {**LAYOUT.gates, "facial-numbness-onset": "neck-pain"}),
            "input form",
        ),
        (TABLE, Layout(LAYOUT.group_order, {"x": "neck-pain"}), "unknown fact"),
    ],
)
def test_a_layout_that_could_hide_a_needed_fact_is_refused(
    table: RuleTable, layout: Layout, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        questionnaire(table, BOOK, layout)


def _hidden(values: dict[str, Any]) -> dict[str, Any]:
    """What a form engine submits: every item whose gate is not answered yes is left unanswered."""
    return {
        name: UNKNOWN if LAYOUT.gates.get(name) and values.get(LAYOUT.gates[name]) is not True else value
        for name, value in values.items()
    }


def _outcome(decision: Decision) -> tuple[Any, ...]:
    return (
        [r.rule.id for r in decision.fired],
        [(o.key, o.priority) for o in decision.orders],
    )


@settings(max_examples=400)
@given(fact_values)
def test_hiding_an_item_never_changes_what_the_rules_decide(values: dict[str, Any]) -> None:
    """Over every combination hypothesis finds, the answers a gate hides change no fired rule and no order.

    With the gate answered no, the decision is the same in every respect but one: the overall risk when no
    rule fires is "low" if any symptom is present and "negligible" otherwise (rules.md §2, last row), and
    headache, dizziness and the arm symptoms are symptoms. rules.md §3 counts negligible and low as one
    level (no order, no card, same finality), so that is the one difference allowed. With the gate
    unknown, hiding can only leave the result more cautious: preliminary if it was, with at least as much
    to ask.
    """
    full, hidden = decide(as_facts(values), TABLE), decide(as_facts(_hidden(values)), TABLE)
    assert _outcome(hidden) == _outcome(full)
    if full.risk != hidden.risk:
        assert not full.fired and {full.risk, hidden.risk} == {"low", "negligible"}
    assert set(hidden.ask_about) >= set(full.ask_about)
    if all(isinstance(values[gate], bool) for gate in set(LAYOUT.gates.values())):  # each gate yes or no
        assert (hidden.final, hidden.ask_about) == (full.final, full.ask_about)
    else:
        assert full.final or not hidden.final
