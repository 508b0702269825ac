"""Plain-language text for clinicians: why each rule fired, what to ask, what was resolved.

Written to be read in five seconds (rules.md §2): the rule, the facts that made it fire, the article's
guideline. Hidden causes are named only as things to rule out, never as a diagnosis.
"""

from __future__ import annotations

import datetime as dt

from service.intake.bundle import Intake, shown
from service.rules.decide import Decision, RuleResult
from service.rules.evaluate import Test
from service.rules.facts import Tri
from service.rules.table import RuleTable


def _held(test: Test, table: RuleTable) -> str:
    label = table.facts[test.fact].label
    if isinstance(test.seen, bool):
        return f"{label} present"
    if test.fact == "facial-numbness-days":
        return f"numbness for {test.seen} days"
    return f"{label}: {test.seen}"


def rule_rationale(result: RuleResult, intake: Intake, table: RuleTable) -> str:
    held = [_held(t, table) for t in result.tests if t.result is Tri.TRUE]
    parts = [f"{result.rule.title} ({result.rule.id}): {', '.join(held)}.", result.rule.guideline]
    if result.rule.risk in ("moderate", "high"):
        parts.append(table.to_rule_out)
    facts_used = {t.fact for t in result.tests if t.result is Tri.TRUE}
    parts += [intake.facts[f].conflict or "" for f in sorted(facts_used) if intake.facts[f].conflict]
    return " ".join(parts)


def no_rule_rationale(decision: Decision, intake: Intake, table: RuleTable) -> str:
    parts = [
        f"{table.no_rule_outcome}.",
        table.no_rule_guideline,
        *intake.conflicts,
        stale_note(intake, table),
    ]
    if not decision.final:
        parts.append(data_required(decision, intake, table))
    return " ".join(p for p in parts if p)


def stale_note(intake: Intake, table: RuleTable) -> str:
    """The readings set aside as too old (rules.md §1, recency): a stale symptom can be why a result reads
    negligible rather than low, so the reader sees what was there and why it did not count."""
    if not intake.stale:
        return ""
    listed = []
    for reading in dict.fromkeys(intake.stale):
        fact = table.facts[reading.fact]
        recorded = f"recorded {reading.when.date().isoformat()}, " if reading.when is not None else ""
        listed.append(f"{fact.label} {shown(reading.value)} ({recorded}older than {fact.lookback})")
    return "Not used, too old to speak for now: " + "; ".join(listed) + "."


def _ask_again(decision: Decision, intake: Intake, table: RuleTable) -> list[str]:
    """A fact to ask about that an old reading said was present: the question says so (rules.md §1)."""
    lines = []
    asked = set(decision.ask_about)
    for reading in (r for r in intake.stale if r.value is True and r.fact in asked):
        when = f" on {reading.when.date().isoformat()}" if reading.when is not None else ""
        lines.append(f"{table.facts[reading.fact].label.capitalize()} was recorded present{when}: ask again.")
    return list(dict.fromkeys(lines))


def data_required(decision: Decision, intake: Intake, table: RuleTable) -> str:
    """Why the result is preliminary, naming the facts to ask about (rules.md §3)."""
    parts = []
    if decision.ask_about:
        labels = [table.facts[f].label for f in decision.ask_about]
        listed = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
        verb = "was" if len(labels) == 1 else "were"
        parts.append(f"Preliminary: {listed} {verb} not assessed: ask before relying on this result.")
        parts += _ask_again(decision, intake, table)
    if decision.in_progress:
        parts.append("Preliminary: the questionnaire is still in progress.")
    return " ".join(parts)


def context_note(intake: Intake, table: RuleTable) -> str | None:
    """Informational facts (rules.md §1): shown, never used to decide."""
    shown = []
    severity = intake.facts.get("neck-pain-severity")
    if severity is not None and severity.value is not None:
        shown.append(f"{table.facts['neck-pain-severity'].label} {severity.value}/10")
    tried = intake.facts.get("neck-treatment-tried")
    if tried is not None and tried.value is not None:
        shown.append(
            "neck problems already being treated" if tried.value else "neck problems not yet treated"
        )
    onset = intake.facts.get("facial-numbness-onset")
    if onset is not None and isinstance(onset.value, dt.date):
        shown.append(f"numbness began {onset.value.isoformat()}")
    return "Also recorded: " + "; ".join(shown) + "." if shown else None
