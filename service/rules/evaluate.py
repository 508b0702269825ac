"""Three-valued evaluation of one condition, with a trace of every fact test.

One walk gives both the result with the facts as known (fires iff TRUE) and the upper bound of
rules.md §3 (fires iff not FALSE): every test is monotone, so taking each unknown fact at its worst
turns exactly the UNKNOWN tests TRUE.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from service.rules.facts import Evidence, Facts, Tri, known
from service.rules.table import Condition, Group, Leaf


class Test(NamedTuple):
    """One fact test as evaluated: the fact, what the rule asked, what was seen, and the evidence (a
    NamedTuple: every call builds one per leaf of every rule)."""

    fact: str
    expects: str
    seen: object
    result: Tri
    evidence: tuple[Evidence, ...]


def leaf_truth(leaf: Leaf, facts: Facts) -> Tri:
    value = known(facts, leaf.fact)
    if value is None:
        return Tri.UNKNOWN
    if leaf.present:
        return Tri.TRUE if value is True else Tri.FALSE
    if leaf.one_of:
        return Tri.TRUE if value in leaf.one_of else Tri.FALSE
    assert leaf.greater_than is not None  # table.py guarantees one test per leaf
    return Tri.TRUE if isinstance(value, int) and value > leaf.greater_than else Tri.FALSE


@cache  # a leaf of the loaded table: the same few strings on every call
def _expects(leaf: Leaf) -> str:
    if leaf.present:
        return "present"
    if leaf.one_of:
        return "one of " + "/".join(leaf.one_of)
    return f"more than {leaf.greater_than} days"


def evaluate(condition: Condition, facts: Facts) -> tuple[Tri, tuple[Test, ...]]:
    """Kleene evaluation of ``condition``; the trace lists every leaf in table order."""
    if isinstance(condition, Leaf):
        truth = leaf_truth(condition, facts)
        fact = facts.get(condition.fact)
        seen = "unknown" if fact is None or fact.value is None else fact.value
        evidence = () if fact is None else fact.evidence
        return truth, (Test(condition.fact, _expects(condition), seen, truth, evidence),)
    return _group(condition, facts)


_ORDER = {t: t.value for t in Tri}.__getitem__  # Kleene order (Enum's .value is a slow property)


def _group(group: Group, facts: Facts) -> tuple[Tri, tuple[Test, ...]]:
    truths: list[Tri] = []
    trace: list[Test] = []
    for term in group.terms:
        truth, tests = evaluate(term, facts)
        truths.append(truth)
        trace += tests
    pick = min if group.op == "all" else max
    return pick(truths, key=_ORDER), tuple(trace)


def unknown_facts(condition: Condition, facts: Facts) -> tuple[str, ...]:
    """The unknown facts whose answer could make ``condition`` TRUE: what to ask about (rules.md §3)."""
    truth, _ = evaluate(condition, facts)
    if truth is not Tri.UNKNOWN:
        return ()
    if isinstance(condition, Leaf):
        return (condition.fact,)
    names: list[str] = []
    for term in condition.terms:
        for name in unknown_facts(term, facts):
            if name not in names:
                names.append(name)
    return tuple(names)
