"""What changed between two versions of a rule table, in words a clinical committee reads.

Each line names one change: a rule's condition (a threshold, a side, a fact), its risk, card, an order it
proposes or that order's priority, the order of the rules (which comes first when several fire), a fact's
lookback or question, an order's title, and the lifecycle. Conditions of the same shape are compared test by
test, so a moved threshold reads as "more than 14 days -> more than 21 days" rather than two whole
conditions side by side; a condition whose shape changed is shown before and after.
"""

from __future__ import annotations

from typing import Any

from service.rules.table import Condition, Group, Leaf, Rule, RuleTable, describe

# the kinds of move result_transitions names, in the order reports list them, with their titles
TRANSITION_KINDS = (("risk", "Risk"), ("status", "Status"), ("orders", "Orders"), ("rules", "Rules"))


def transition_rows(counts: dict[str, dict[str, int]], none: str) -> list[str]:
    """Markdown rows ``| kind | transition | count |`` of counted moves, or one row saying ``none``."""
    rows = [
        f"| {title} | {name} | {count:,} |"
        for kind, title in TRANSITION_KINDS
        for name, count in counts[kind].items()
    ]
    return rows or [f"| - | {none} | 0 |"]


def result_transitions(was: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, name) of each way one patient's result (``Assessment.outcome``) moved between two tables:
    risk and status before -> after, each order added, removed or with another priority, each rule newly
    firing or no longer firing. ``rules diff --corpus`` and shadow mode count them alike."""
    found = []
    for kind in ("risk", "status"):
        if was.get(kind) != now.get(kind):
            found.append((kind, f"{was.get(kind) or 'none'} -> {now.get(kind) or 'none'}"))
    orders_was, orders_now = was.get("orders", {}), now.get("orders", {})
    for key in sorted(set(orders_was) | set(orders_now)):
        if key not in orders_was:
            found.append(("orders", f"+ {key} ({orders_now[key]})"))
        elif key not in orders_now:
            found.append(("orders", f"- {key} ({orders_was[key]})"))
        elif orders_was[key] != orders_now[key]:
            found.append(("orders", f"{key} {orders_was[key]} -> {orders_now[key]}"))
    rules_was, rules_now = set(was.get("rules", [])), set(now.get("rules", []))
    found += [("rules", f"+ {rule} (newly firing)") for rule in sorted(rules_now - rules_was)]
    found += [("rules", f"- {rule} (no longer firing)") for rule in sorted(rules_was - rules_now)]
    return found


def table_changes(old: RuleTable, new: RuleTable) -> list[str]:
    """Every difference that can change a result or what is published, one sentence each."""
    lines = [f"{old.id} {old.version} ({old.status}) -> {new.id} {new.version} ({new.status})"]
    lines += _facts(old, new)
    lines += _orders(old, new)
    lines += _rules(old, new)
    if old.no_rule_guideline != new.no_rule_guideline or old.no_rule_outcome != new.no_rule_outcome:
        lines.append("no rule fired: the outcome or guideline wording changed")
    lines += _lifecycle(old, new)
    if len(lines) == 1:
        lines.append("no difference in facts, orders or rules")
    return lines


def _facts(old: RuleTable, new: RuleTable) -> list[str]:
    out = [f"fact {name} added ({new.facts[name].kind})" for name in new.facts if name not in old.facts]
    out += [f"fact {name} removed" for name in old.facts if name not in new.facts]
    for name, before in old.facts.items():
        after = new.facts.get(name)
        if after is None:
            continue
        if before.lookback != after.lookback:
            out.append(f"fact {name}: lookback {_window(before.lookback)} -> {_window(after.lookback)}")
        if before.kind != after.kind:
            out.append(f"fact {name}: kind {before.kind} -> {after.kind}")
        if before.question != after.question:
            out.append(f"fact {name}: question {before.question!r} -> {after.question!r}")
    return out


def _window(lookback: object) -> str:
    return "none (any reading counts)" if lookback is None else str(lookback)


def _orders(old: RuleTable, new: RuleTable) -> list[str]:
    out = [f"order {key} added: {new.orders[key].title}" for key in new.orders if key not in old.orders]
    out += [f"order {key} removed" for key in old.orders if key not in new.orders]
    out += [
        f"order {key}: title {old.orders[key].title!r} -> {new.orders[key].title!r}"
        for key in old.orders
        if key in new.orders and old.orders[key].title != new.orders[key].title
    ]
    return out


def _rules(old: RuleTable, new: RuleTable) -> list[str]:
    before = {r.id: r for r in old.rules}
    after = {r.id: r for r in new.rules}
    out = [
        f"rule {rid} added: when {describe(r.when, new)}; risk {r.risk}"
        for rid, r in after.items()
        if rid not in before
    ]
    out += [
        f"rule {rid} removed (was: when {describe(r.when, old)})"
        for rid, r in before.items()
        if rid not in after
    ]
    for rid, was in before.items():
        now = after.get(rid)
        if now is not None:
            out += [f"rule {rid}: {change}" for change in _rule(was, now, old, new)]
    kept_old = [r for r in before if r in after]
    kept_new = [r for r in after if r in before]
    if kept_old != kept_new:
        out.append(f"rule order (first listed comes first): {', '.join(kept_old)} -> {', '.join(kept_new)}")
    return out


def _rule(was: Rule, now: Rule, old: RuleTable, new: RuleTable) -> list[str]:
    out = _condition(was.when, now.when, old, new)
    for name in ("risk", "card"):
        if getattr(was, name) != getattr(now, name):
            out.append(f"{name} {getattr(was, name)} -> {getattr(now, name)}")
    orders_was = {o.order: o.priority for o in was.orders}
    orders_now = {o.order: o.priority for o in now.orders}
    for key, priority in orders_now.items():
        if key not in orders_was:
            out.append(f"now proposes {key} ({priority})")
        elif orders_was[key] != priority:
            out.append(f"{key} priority {orders_was[key]} -> {priority}")
    out += [f"no longer proposes {key} (was {p})" for key, p in orders_was.items() if key not in orders_now]
    wording = [n for n in ("title", "outcome", "guideline") if getattr(was, n) != getattr(now, n)]
    if wording:
        out.append(f"wording of its {', '.join(wording)} changed")
    return out


def _condition(was: Condition, now: Condition, old: RuleTable, new: RuleTable) -> list[str]:
    """Test by test when both conditions have the same shape; else the whole condition before and after."""
    if _shape(was) != _shape(now):
        return [f"condition was {describe(was, old)}; now {describe(now, new)}"]
    return [
        f"{describe(a, old)} -> {describe(b, new)}"
        for a, b in zip(_leaves(was), _leaves(now), strict=True)
        if a != b
    ]


def _shape(condition: Condition) -> object:
    """The tree without the tests: operators and the fact each leaf reads."""
    if isinstance(condition, Leaf):
        return condition.fact
    return (condition.op, tuple(_shape(t) for t in condition.terms))


def _leaves(condition: Condition) -> list[Leaf]:
    if isinstance(condition, Group):
        return [leaf for term in condition.terms for leaf in _leaves(term)]
    return [condition]


def _lifecycle(old: RuleTable, new: RuleTable) -> list[str]:
    a, b = old.lifecycle.metadata(), new.lifecycle.metadata()
    out = []
    for key in ("approvalDate", "lastReviewDate", "effectivePeriod"):
        if a.get(key) != b.get(key):
            out.append(f"{key} {_shown(a.get(key))} -> {_shown(b.get(key))}")
    added = [c for c in new.change_log if c.version not in {d.version for d in old.change_log}]
    out += [f"change log {c.version} ({c.date}): {c.change}" for c in added]
    return out


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return f"{value.get('start', '...')} to {value.get('end', 'open')}"
    return str(value) if value is not None else "none"
