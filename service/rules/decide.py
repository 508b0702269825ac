"""Facts → Decision: which rules fire, the overall risk, the orders, and final vs preliminary.

Pure: no I/O, no FHIR. rules.md §2 (highest risk wins, every fired rule reported, one order of a kind
at its most urgent priority) and §3 (the upper bound decides whether the result is final).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.rules.evaluate import Test, evaluate, unknown_facts
from service.rules.facts import Evidence, Facts, Tri, known
from service.rules.table import Rule, RuleTable, priority_rank, risk_rank


@dataclass(frozen=True)
class RuleResult:
    """A rule as evaluated: its truth with the facts as known, and the trace of its fact tests."""

    rule: Rule
    truth: Tri
    tests: tuple[Test, ...]

    @property
    def fired(self) -> bool:
        return self.truth is Tri.TRUE

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """Evidence of the tests that held: what made the rule fire."""
        seen: dict[Evidence, None] = {}
        for test in self.tests:
            if test.result is Tri.TRUE:
                seen.update(dict.fromkeys(test.evidence))
        return tuple(seen)


@dataclass(frozen=True)
class ProposedOrder:
    """One order to propose; ``rules`` are every fired rule that asked for it (most urgent first)."""

    key: str
    priority: str
    rules: tuple[str, ...]
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class Decision:
    table_id: str
    table_version: str
    results: tuple[RuleResult, ...]
    risk: str
    bound_risk: str
    orders: tuple[ProposedOrder, ...]
    final: bool
    ask_about: tuple[str, ...]
    in_progress: bool = False

    @property
    def fired(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.fired)


def decide(facts: Facts, table: RuleTable, in_progress: bool = False) -> Decision:
    """Evaluate every rule; ``in_progress`` (an unfinished questionnaire) keeps the result preliminary."""
    results = tuple(RuleResult(rule, *evaluate(rule.when, facts)) for rule in table.rules)
    fired = [r for r in results if r.fired]
    bound = [r for r in results if r.truth is not Tri.FALSE]
    risk = _risk(fired, facts, table)
    bound_risk = _risk(bound, facts, table, worst_case=True)
    orders = _orders(fired)
    # a high result is final: the urgent evaluation covers whatever else is unknown (rules.md §3)
    escalating = [] if risk == "high" else _escalating_rules(risk, orders, bound, fired)
    ask: list[str] = []
    for result in escalating:
        ask.extend(name for name in unknown_facts(result.rule.when, facts) if name not in ask)
    final = not escalating and not in_progress
    return Decision(
        table_id=table.id,
        table_version=table.version,
        results=results,
        risk=risk,
        bound_risk=bound_risk,
        orders=orders,
        final=final,
        ask_about=tuple(ask),
        in_progress=in_progress,
    )


def _risk(fired: list[RuleResult], facts: Facts, table: RuleTable, worst_case: bool = False) -> str:
    if fired:
        return max((r.rule.risk for r in fired), key=risk_rank)
    symptoms = [f.name for f in table.facts.values() if f.symptom]
    values = [known(facts, name) for name in symptoms]
    any_present = any(v is True for v in values) or (worst_case and any(v is None for v in values))
    return "low" if any_present else "negligible"


def _orders(fired: list[RuleResult]) -> tuple[ProposedOrder, ...]:
    by_key: dict[str, ProposedOrder] = {}
    for result in fired:
        for ref in result.rule.orders:
            old = by_key.get(ref.order)
            if old is None:
                by_key[ref.order] = ProposedOrder(ref.order, ref.priority, (result.rule.id,), result.evidence)
                continue
            rules = (*old.rules, result.rule.id)
            evidence = tuple(dict.fromkeys((*old.evidence, *result.evidence)))
            priority = max(old.priority, ref.priority, key=priority_rank)
            by_key[ref.order] = ProposedOrder(ref.order, priority, rules, evidence)
    return tuple(by_key.values())


def _level(risk: str) -> int:
    """Risk level for finality: negligible and low count as one level (rules.md §3)."""
    return max(risk_rank(risk), risk_rank("low"))


def _escalating_rules(
    risk: str, orders: tuple[ProposedOrder, ...], bound: list[RuleResult], fired: list[RuleResult]
) -> list[RuleResult]:
    """Rules that fire only in the upper bound and would raise the risk or add/hasten a serious order."""
    have = {o.key: priority_rank(o.priority) for o in orders}
    out = []
    for result in bound:
        if result.fired:  # (not ``result in fired``: that compared whole results, traces and all)
            continue
        raises = _level(result.rule.risk) > _level(risk)
        serious = risk_rank(result.rule.risk) >= risk_rank("moderate")
        hastens = serious and any(
            ref.order not in have or priority_rank(ref.priority) > have[ref.order]
            for ref in result.rule.orders
        )
        if raises or hastens:
            out.append(result)
    return out
