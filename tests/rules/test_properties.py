"""Properties of rules.md §3 over every combination of facts hypothesis can find.

1. Monotone: turning an unknown fact into its worst value (present, one-sided, > 14 days) never lowers
   the risk.
2. Final means final: if a result is final, no assignment of its unknown facts raises the risk, and -
   unless the result is high, where rules.md §3 lets the urgent evaluation cover the rest - none adds or
   hastens an order of a moderate- or high-risk rule.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from service.rules.decide import Decision, decide
from service.rules.facts import Evidence, Fact
from service.rules.table import load_table, priority_rank, risk_rank

TABLE = load_table()
DECIDING = [f for f in TABLE.facts.values() if not f.input_only]
UNKNOWN = object()  # the fact is not in the mapping at all


def known_values(kind: str) -> st.SearchStrategy[Any]:
    return {
        "bool": st.booleans(),
        "side": st.sampled_from(["left", "right", "both"]),
        "days": st.integers(min_value=0, max_value=40),
        "score": st.integers(min_value=0, max_value=10),
    }[kind]


def values_for(kind: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(UNKNOWN), st.none(), known_values(kind))


WORST = {"bool": True, "side": "left", "days": 15, "score": 10}


def as_facts(values: dict[str, Any]) -> dict[str, Fact]:
    return {
        name: Fact(value, (Evidence("Observation", f"Observation/{name}"),))
        for name, value in values.items()
        if value is not UNKNOWN
    }


fact_values = st.fixed_dictionaries({f.name: values_for(f.kind) for f in DECIDING})


def level(risk: str) -> int:
    return max(risk_rank(risk), risk_rank("low"))


def serious_orders(decision: Decision) -> dict[str, int]:
    serious = {r.rule.id for r in decision.fired if risk_rank(r.rule.risk) >= risk_rank("moderate")}
    return {o.key: priority_rank(o.priority) for o in decision.orders if set(o.rules) & serious}


@given(fact_values, st.data())
def test_an_unknown_turned_present_never_lowers_the_risk(values: dict[str, Any], data: st.DataObject) -> None:
    unknown = [f for f in DECIDING if values[f.name] in (UNKNOWN, None)]
    assume(unknown)
    fact = data.draw(st.sampled_from(unknown))
    before = decide(as_facts(values), TABLE)
    after = decide(as_facts({**values, fact.name: WORST[fact.kind]}), TABLE)
    assert risk_rank(after.risk) >= risk_rank(before.risk)


@given(fact_values, st.data())
def test_a_final_result_cannot_be_escalated_by_any_answer(
    values: dict[str, Any], data: st.DataObject
) -> None:
    decision = decide(as_facts(values), TABLE)
    assume(decision.final)
    filled = dict(values)
    for f in DECIDING:
        if values[f.name] in (UNKNOWN, None):
            filled[f.name] = data.draw(known_values(f.kind))  # drawn, not filtered: no invalid examples
    answered = decide(as_facts(filled), TABLE)
    assert level(answered.risk) <= level(decision.risk)
    if decision.risk != "high":  # rules.md §3: at high risk the urgent evaluation covers the rest
        have = serious_orders(decision)
        for key, rank in serious_orders(answered).items():
            assert key in have, f"{key} added by answering {filled}"
            assert rank <= have[key], f"{key} hastened by answering {filled}"


@given(fact_values)
def test_a_preliminary_result_always_names_what_to_ask(values: dict[str, Any]) -> None:
    decision = decide(as_facts(values), TABLE)
    assume(not decision.final)
    assert decision.ask_about
    asked = set(decision.ask_about)
    assert all(values[name] in (UNKNOWN, None) for name in asked)
