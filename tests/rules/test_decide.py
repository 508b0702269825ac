"""Table-driven rule tests: given these facts, these rules fire, with this risk, these orders, this status.

Facts not named are unknown. ``ALL_NO`` records every boolean fact as absent.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.rules.decide import decide
from service.rules.facts import Evidence, Fact, Tri
from service.rules.table import load_table

TABLE = load_table()
URGENT = ("vision-change", "slurred-speech", "weakness", "symptoms-worsening")
BOOLS = [f.name for f in TABLE.facts.values() if f.kind == "bool"]
ALL_NO: dict[str, Any] = dict.fromkeys(BOOLS, False)


def facts(**values: Any) -> dict[str, Fact]:
    out = {}
    for key, value in values.items():
        name = key.replace("_", "-")
        out[name] = Fact(value, (Evidence("Observation", f"Observation/{name}"),))
    return out


def no(**values: Any) -> dict[str, Fact]:
    """Every boolean fact absent, then ``values`` on top."""
    return facts(**({k.replace("-", "_"): v for k, v in ALL_NO.items()} | values))


# (case, facts, fired rules, risk, orders {key: priority}, final, ask_about)
CASES = [
    ("nothing present, all answered", no(), [], "negligible", {}, True, ()),
    (
        "urgent: vision change alone",
        no(vision_change=True),
        ["urgent-signs"],
        "high",
        {"urgent-evaluation": "stat"},
        True,
        (),
    ),
    (
        "urgent: slurred speech alone",
        no(slurred_speech=True),
        ["urgent-signs"],
        "high",
        {"urgent-evaluation": "stat"},
        True,
        (),
    ),
    (
        "urgent: weakness alone",
        no(weakness=True),
        ["urgent-signs"],
        "high",
        {"urgent-evaluation": "stat"},
        True,
        (),
    ),
    (
        "urgent: worsening alone",
        no(symptoms_worsening=True),
        ["urgent-signs"],
        "high",
        {"urgent-evaluation": "stat"},
        True,
        (),
    ),
    (
        "urgent sign needs no numbness; high is final with everything else unknown",
        facts(weakness=True),
        ["urgent-signs"],
        "high",
        {"urgent-evaluation": "stat"},
        True,
        (),
    ),
    (
        "one-sided left",
        no(facial_numbness=True, facial_numbness_side="left", facial_numbness_days=3),
        ["imaging-referral"],
        "moderate",
        {"neurology-referral": "urgent", "mri-brain": "urgent"},
        True,
        (),
    ),
    (
        "one-sided right",
        no(facial_numbness=True, facial_numbness_side="right", facial_numbness_days=3),
        ["imaging-referral"],
        "moderate",
        {"neurology-referral": "urgent", "mri-brain": "urgent"},
        True,
        (),
    ),
    (
        "both sides with headache",
        no(facial_numbness=True, facial_numbness_side="both", facial_numbness_days=3, headache=True),
        ["imaging-referral"],
        "moderate",
        {"neurology-referral": "urgent", "mri-brain": "urgent"},
        True,
        (),
    ),
    (
        "both sides with dizziness",
        no(facial_numbness=True, facial_numbness_side="both", facial_numbness_days=3, dizziness=True),
        ["imaging-referral"],
        "moderate",
        {"neurology-referral": "urgent", "mri-brain": "urgent"},
        True,
        (),
    ),
    ("headache without numbness fires nothing", no(headache=True), [], "low", {}, True, ()),
    ("one-sided but numbness absent", no(facial_numbness_side="left"), [], "negligible", {}, True, ()),
    (
        "14 days is not beyond two weeks",
        no(facial_numbness=True, facial_numbness_side="both", facial_numbness_days=14),
        [],
        "low",
        {},
        True,
        (),
    ),
    (
        "15 days is",
        no(facial_numbness=True, facial_numbness_side="both", facial_numbness_days=15),
        ["persistent-numbness"],
        "moderate",
        {"neurology-referral": "routine"},
        True,
        (),
    ),
    (
        "persistent whether or not neck treatment tried",
        no(
            facial_numbness=True,
            facial_numbness_side="both",
            facial_numbness_days=20,
            neck_treatment_tried=True,
        ),
        ["persistent-numbness"],
        "moderate",
        {"neurology-referral": "routine"},
        True,
        (),
    ),
    (
        "imaging + persistent: one neurology referral at the most urgent priority",
        no(facial_numbness=True, facial_numbness_side="right", facial_numbness_days=30),
        ["imaging-referral", "persistent-numbness"],
        "moderate",
        {"neurology-referral": "urgent", "mri-brain": "urgent"},
        True,
        (),
    ),
    (
        "everything fires (S7)",
        no(
            facial_numbness=True,
            facial_numbness_side="left",
            facial_numbness_days=30,
            dizziness=True,
            weakness=True,
        ),
        ["urgent-signs", "imaging-referral", "persistent-numbness"],
        "high",
        {"urgent-evaluation": "stat", "neurology-referral": "urgent", "mri-brain": "urgent"},
        True,
        (),
    ),
    (
        "radiculopathy: neck pain + radiating arm pain",
        no(neck_pain=True, arm_pain_radiating=True),
        ["radiculopathy-pattern"],
        "low",
        {"physiotherapy-referral": "routine"},
        True,
        (),
    ),
    (
        "radiculopathy: neck pain + arm/hand numbness",
        no(neck_pain=True, arm_hand_numbness=True),
        ["radiculopathy-pattern"],
        "low",
        {"physiotherapy-referral": "routine"},
        True,
        (),
    ),
    ("neck pain alone", no(neck_pain=True), [], "low", {}, True, ()),
    # unknown is not "no" (rules.md §3)
    (
        "urgent signs not recorded → preliminary, ask all four (S5)",
        facts(
            facial_numbness=True,
            facial_numbness_side="both",
            facial_numbness_days=5,
            headache=False,
            dizziness=False,
        ),
        [],
        "low",
        {},
        False,
        URGENT,
    ),
    (
        "one urgent sign unknown → ask that one",
        no(facial_numbness=True, facial_numbness_side="both", facial_numbness_days=5) | facts(weakness=None),
        [],
        "low",
        {},
        False,
        ("weakness",),
    ),
    (
        "side unknown, no headache/dizziness → ask side",
        no(facial_numbness=True, facial_numbness_days=3),
        [],
        "low",
        {},
        False,
        ("facial-numbness-side",),
    ),
    (
        "duration unknown → ask duration",
        no(facial_numbness=True, facial_numbness_side="both"),
        [],
        "low",
        {},
        False,
        ("facial-numbness-days",),
    ),
    (
        "duration unknown but imaging already urgent → final (nothing more or sooner)",
        no(facial_numbness=True, facial_numbness_side="left"),
        ["imaging-referral"],
        "moderate",
        {"neurology-referral": "urgent", "mri-brain": "urgent"},
        True,
        (),
    ),
    (
        "persistent fired, side unknown → preliminary: MRI and an urgent referral could follow",
        no(facial_numbness=True, facial_numbness_days=20),
        ["persistent-numbness"],
        "moderate",
        {"neurology-referral": "routine"},
        False,
        ("facial-numbness-side",),
    ),
    (
        "numbness unknown → ask numbness (and its details)",
        no() | facts(facial_numbness=None),
        [],
        "negligible",
        {},
        False,
        ("facial-numbness", "facial-numbness-side", "facial-numbness-days"),
    ),
    (
        "radiculopathy facts unknown alone never hold a result back",
        no() | facts(neck_pain=None, arm_pain_radiating=None, arm_hand_numbness=None),
        [],
        "negligible",
        {},
        True,
        (),
    ),
    (
        "nothing known at all → preliminary",
        {},
        [],
        "negligible",
        {},
        False,
        (*URGENT, "facial-numbness", "facial-numbness-side", "headache", "dizziness", "facial-numbness-days"),
    ),
]


@pytest.mark.parametrize(
    ("case", "given", "rules", "risk", "orders", "final", "ask"), CASES, ids=[c[0] for c in CASES]
)
def test_rule_table(
    case: str,
    given: dict[str, Fact],
    rules: list[str],
    risk: str,
    orders: dict[str, str],
    final: bool,
    ask: tuple[str, ...],
) -> None:
    decision = decide(given, TABLE)
    assert [r.rule.id for r in decision.fired] == rules
    assert decision.risk == risk
    assert {o.key: o.priority for o in decision.orders} == orders
    assert decision.final is final
    assert decision.ask_about == ask


def test_every_rule_is_covered_by_the_table() -> None:
    fired = {rule for case in CASES for rule in case[2]}
    assert fired == {r.id for r in TABLE.rules}


def test_trace_names_the_facts_and_evidence_that_fired_a_rule() -> None:
    decision = decide(no(facial_numbness=True, facial_numbness_side="right", facial_numbness_days=3), TABLE)
    (imaging,) = decision.fired
    held = [(t.fact, t.seen) for t in imaging.tests if t.result is Tri.TRUE]
    assert held == [("facial-numbness", True), ("facial-numbness-side", "right")]
    assert [e.reference for e in imaging.evidence] == [
        "Observation/facial-numbness",
        "Observation/facial-numbness-side",
    ]
    headache = next(t for t in imaging.tests if t.fact == "headache")
    assert headache.result is Tri.FALSE and headache.seen is False


def test_an_unfinished_questionnaire_keeps_the_result_preliminary() -> None:
    assert decide(no(), TABLE, in_progress=True).final is False


def test_merged_order_names_every_rule_that_asked_for_it() -> None:
    decision = decide(no(facial_numbness=True, facial_numbness_side="right", facial_numbness_days=30), TABLE)
    referral = next(o for o in decision.orders if o.key == "neurology-referral")
    assert referral.rules == ("imaging-referral", "persistent-numbness")
