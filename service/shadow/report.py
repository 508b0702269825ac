"""``neckcheck rules shadow-report``: what shadow mode saw, for the committee, in the words of impact.md.

It reads the differences stored since a time (service/storage/shadow.py) and counts them as ``rules diff
--corpus`` counts a population: calls and patients whose result the candidate would change, by transition
(risk, status, each order, each rule), with example patients. Calls whose result was the same are not
stored; their number is in the metrics (``neckcheck_shadow_evaluations{outcome="same"}``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from service.rules.compare import TRANSITION_KINDS, transition_rows
from service.storage.shadow import differences_since

EXAMPLES = 10
REPORT, MARKDOWN = "shadow.json", "shadow.md"


def shadow_report(engine: Engine, since: dt.datetime) -> dict[str, Any]:
    calls = 0
    patients: set[str] = set()
    tables: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    moves: dict[str, Counter[str]] = {kind: Counter() for kind, _ in TRANSITION_KINDS}
    examples: dict[str, list[dict[str, Any]]] = {}
    for row in differences_since(engine, since):
        calls += 1
        patients.add(row["subject"])
        tables[f"{row['live_rule_set']} -> {row['shadow_rule_set']}"] += 1
        channels[row["channel"]] += 1
        for move in row["transitions"]:
            kind, _, name = move.partition(": ")
            moves.setdefault(kind, Counter())[name] += 1
            shown = examples.setdefault(move, [])
            if len(shown) < EXAMPLES and all(e["patient"] != row["subject"] for e in shown):
                shown.append(
                    {
                        "patient": row["subject"],
                        "at": row["at"],
                        "before": row["before"],
                        "after": row["after"],
                    }
                )
    return {
        "since": since.isoformat(),
        "tables": dict(sorted(tables.items())),
        "differentCalls": calls,
        "differentPatients": len(patients),
        "byChannel": dict(sorted(channels.items())),
        **{kind: dict(sorted(counts.items())) for kind, counts in moves.items()},
        "examples": examples,
    }


def markdown(report: dict[str, Any]) -> str:
    tables = ", ".join(report["tables"]) or "no candidate difference stored"
    lines = [
        f"# Shadow mode since {report['since']}",
        "",
        f"Live -> candidate: {tables}.",
        "",
        f"{report['differentCalls']:,} live calls ({report['differentPatients']:,} patients) would have had "
        "another result under the candidate table. Calls with the same result are counted in the metrics "
        "(`neckcheck_shadow_evaluations`), not stored.",
        "",
        "| kind | transition | calls |",
        "|---|---|---:|",
    ]
    lines += transition_rows(report, "no call's result would change")
    lines += ["", "## Examples", "", f"Up to {EXAMPLES} patients per transition.", ""]
    for move, shown in report["examples"].items():
        lines += [f"### {move}", ""]
        for example in shown:
            lines.append(f"- **{example['patient']}** ({example['at']})")
            for side in ("before", "after"):
                lines.append(f"  - {side}: {_result(example[side])}")
        lines.append("")
    return "\n".join(lines)


def _result(side: dict[str, Any]) -> str:
    orders = ", ".join(f"{k} ({v})" for k, v in side.get("orders", {}).items()) or "no orders"
    rules = ", ".join(side.get("rules", [])) or "no rule fired"
    return f"{side.get('status')}, risk {side.get('risk')}; {rules}; {orders}"


def write(report: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / REPORT, folder / MARKDOWN]
    paths[0].write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    return paths
