"""What a CDS committee reads about its cards in use: per card and per rule, week by week, how often each was
shown, accepted and overridden, and with which override reasons (CDS Hooks 2.0.1 §Feedback).

A card is counted in the week it was issued; a feedback item in the week the service received it (the
EHR's ``outcomeTimestamp`` is its own clock, kept as sent). Feedback is joined to its card by the card's
uuid when the report is read, whichever row was stored first; feedback on a card this database never
issued counts under "unknown". Free-text override comments are never stored (service/storage/feedback.py):
the report counts how many there were.

``feedback.json`` is the data; ``markdown`` and ``picture`` render it. ``text`` is the terminal's view, as
`neckcheck feedback-report` printed it before this report grew periods and reasons.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from service.storage.database import as_utc
from service.storage.schema import cards, feedback

if TYPE_CHECKING:
    from matplotlib.figure import Figure

UNKNOWN = "unknown"  # feedback on a card this database never issued
NO_RULE = "(no rule fired: data missing)"
PERIODS = ("week", "all")
REPORT, MARKDOWN, PICTURE = "feedback.json", "feedback.md", "feedback.png"


@dataclass
class Tally:
    """One card kind or one rule, over the report's whole period and per week."""

    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    comments: int = 0  # override comments given (their text is never stored)
    reasons: Counter[str] = field(default_factory=Counter)  # "system|code" of each override reason
    weeks: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))

    def as_json(self, key: str, name: str, by_week: bool) -> dict[str, Any]:
        answered = self.accepted + self.overridden
        row: dict[str, Any] = {
            name: key,
            "shown": self.shown,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "acceptance": None if answered == 0 else round(self.accepted / answered, 4),
            "override": None if answered == 0 else round(self.overridden / answered, 4),
            "overrideReasons": [
                {"reason": reason, "count": count}
                for reason, count in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "overrideComments": self.comments,
        }
        if by_week:
            row["weeks"] = [
                {"week": week, "shown": s, "accepted": a, "overridden": o}
                for week, (s, a, o) in sorted(self.weeks.items())
            ]
        return row


def week_of(when: dt.datetime) -> str:
    """The ISO 8601 week (``2026-W49``): Monday to Sunday, the same in every locale."""
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def feedback_report(engine: Engine, since: dt.datetime | None = None, by: str = "week") -> dict[str, Any]:
    """The report's data: ``since`` bounds cards by issue time and feedback by receipt time."""
    if by not in PERIODS:
        raise ValueError(f"by must be one of {PERIODS}")
    card_query, answer_query = select(cards), select(feedback)
    if since is not None:
        card_query = card_query.where(cards.c.issued_at >= since)
        answer_query = answer_query.where(feedback.c.received_at >= since)
    with engine.connect() as conn:
        issued = list(conn.execute(card_query))
        answers = list(conn.execute(answer_query))
        # feedback in the period on a card issued before it: its card still says which rules it carried
        known = {c.uuid: c for c in issued}
        earlier = {a.card_uuid for a in answers} - known.keys()
        if earlier:
            known |= {c.uuid: c for c in conn.execute(select(cards).where(cards.c.uuid.in_(earlier)))}
    by_card: dict[str, Tally] = defaultdict(Tally)
    by_rule: dict[str, Tally] = defaultdict(Tally)
    for card in issued:
        week = week_of(as_utc(card.issued_at))
        for tally in _tallies(card, by_card, by_rule):
            tally.shown += 1
            tally.weeks[week][0] += 1
    for answer in answers:
        week = week_of(as_utc(answer.received_at))
        accepted = answer.outcome == "accepted"
        for tally in _tallies(known.get(answer.card_uuid), by_card, by_rule):
            if accepted:
                tally.accepted += 1
            else:
                tally.overridden += 1
                tally.comments += bool(answer.has_comment)
                if answer.override_code:
                    tally.reasons[f"{answer.override_system or ''}|{answer.override_code}"] += 1
                else:
                    tally.reasons["(no reason given)"] += 1
            tally.weeks[week][1 if accepted else 2] += 1
    weekly = by == "week"
    return {
        "since": since.isoformat() if since is not None else None,
        "by": by,
        "cards": [t.as_json(k, "card", weekly) for k, t in sorted(by_card.items())],
        "rules": [t.as_json(k, "rule", weekly) for k, t in sorted(by_rule.items())],
    }


def _tallies(card: Any, by_card: dict[str, Tally], by_rule: dict[str, Tally]) -> list[Tally]:
    """The card kind's tally and one per rule behind the card (a card may carry several rules)."""
    if card is None:
        return [by_card[UNKNOWN], by_rule[UNKNOWN]]
    rules = str(card.rules).split(",") if card.rules else [NO_RULE]
    return [by_card[f"{card.service_id} {card.indicator}"], *(by_rule[r] for r in rules)]


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f}%"


def text(report: dict[str, Any]) -> str:
    """Two aligned tables, per rule and per card, for a terminal."""
    out = []
    for title, rows, key in (("rule", report["rules"], "rule"), ("card", report["cards"], "card")):
        out.append(
            f"{title:<42} {'shown':>6} {'accepted':>9} {'overridden':>11} {'accept %':>9} {'override %':>11}"
        )
        for r in rows:
            out.append(
                f"{r[key]:<42} {r['shown']:>6} {r['accepted']:>9} {r['overridden']:>11} "
                f"{_percent(r['acceptance']):>9} {_percent(r['override']):>11}"
            )
        out.append("")
    return "\n".join(out)


def markdown(report: dict[str, Any]) -> str:
    """The committee's page: totals, override reasons, and (by week) each rule's weeks."""
    since = report["since"] or "the first record"
    lines = [f"# CDS card feedback since {since}", ""]
    for title, rows, key in (("Rule", report["rules"], "rule"), ("Card", report["cards"], "card")):
        lines += [
            f"## By {title.lower()}",
            "",
            f"| {title} | Shown | Accepted | Overridden | Accepted % | Overridden % | Comments |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r[key]} | {r['shown']} | {r['accepted']} | {r['overridden']} | {_percent(r['acceptance'])} "
            f"| {_percent(r['override'])} | {r['overrideComments']} |"
            for r in rows
        ]
        lines.append("")
    reasons = [(r["rule"], x) for r in report["rules"] for x in r["overrideReasons"]]
    lines += ["## Override reasons, by rule", ""]
    if reasons:
        lines += ["| Rule | Reason (system\\|code) | Count |", "|---|---|---:|"]
        lines += [
            f"| {rule} | {x['reason'].replace('|', chr(92) + '|')} | {x['count']} |" for rule, x in reasons
        ]
    else:
        lines.append("No card was overridden in this period.")
    lines.append("")
    if report["by"] == "week":
        lines += ["## Week by week, by rule (shown / accepted / overridden)", ""]
        for r in report["rules"]:
            lines += [
                f"### {r['rule']}",
                "",
                "| Week | Shown | Accepted | Overridden |",
                "|---|---:|---:|---:|",
            ]
            lines += [
                f"| {w['week']} | {w['shown']} | {w['accepted']} | {w['overridden']} |" for w in r["weeks"]
            ]
            lines.append("")
    return "\n".join(lines)


def figure(report: dict[str, Any]) -> Figure:
    """Per rule: cards shown each week (bars) and the share overridden (line, right axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = [r for r in report["rules"] if r.get("weeks")]
    fig, axes = plt.subplots(max(len(rules), 1), 1, figsize=(10, 2.6 * max(len(rules), 1)), squeeze=False)
    for ax, rule in zip(axes[:, 0], rules, strict=False):
        weeks = [w["week"] for w in rule["weeks"]]
        shown = [w["shown"] for w in rule["weeks"]]
        bars = ax.bar(weeks, shown, color="#4c72b0", label="shown")
        ax.bar_label(bars, labels=[str(s) if s else "" for s in shown], padding=1)
        ax.set_ylabel("cards shown")
        ax.set_title(f"{rule['rule']}: {rule['shown']} shown, {_percent(rule['override'])} overridden")
        rate = ax.twinx()
        shares = [
            (w["overridden"] / (w["accepted"] + w["overridden"])) * 100
            if w["accepted"] + w["overridden"]
            else None
            for w in rule["weeks"]
        ]
        rate.plot(weeks, [s if s is not None else float("nan") for s in shares], "o-", color="#c44e52")
        rate.set_ylim(0, 100)
        rate.set_ylabel("% overridden")
    if not rules:
        axes[0, 0].text(0.5, 0.5, "No cards in this period", ha="center", va="center")
        axes[0, 0].set_axis_off()
    fig.tight_layout()
    return fig


def write(report: dict[str, Any], folder: Path) -> list[Path]:
    """feedback.json, feedback.md and feedback.png in ``folder`` (created)."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / REPORT, folder / MARKDOWN, folder / PICTURE]
    paths[0].write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    fig = figure(report)
    fig.savefig(paths[2], dpi=80)
    plt.close(fig)
    return paths
