"""The committee's report of a rule change: impact.md (the change in words, the transitions, examples with
the evidence that decided them) and impact.png (the transitions as bars), from impact.json's counts.

A reader should be able to approve or send back the change from this page alone: what the table says
differently, how many patients of a real population move and how, and for each kind of move a few
patients with the facts that decided their result before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.rules.compare import TRANSITION_KINDS, transition_rows

REPORT, PICTURE = "impact.md", "impact.png"


def write_report(out: Path, data: dict[str, Any], table_diff: list[str]) -> None:
    (out / REPORT).write_text(markdown(data, table_diff), encoding="utf-8")
    picture(data, out / PICTURE)


def markdown(data: dict[str, Any], table_diff: list[str]) -> str:
    patients = data["patients"]
    when = ", ".join(f"{k} {v}" for k, v in data["evaluationTime"].items())
    lines = [
        f"# Rule change: {data['old']} -> {data['new']}",
        "",
        "## What the table says differently",
        "",
        *[f"- {line}" for line in table_diff[1:]],
        "",
        "## Patients",
        "",
        f"Evaluation time: {when}. Each patient was assessed under both tables from the same data.",
        "",
        "| patients | count |",
        "|---|---:|",
        f"| assessed | {patients['assessed']:,} |",
        f"| result changed | {patients['changed']:,} |",
        f"| result unchanged | {patients['unchanged']:,} |",
        f"| not compared (no fact, or refused under both) | {patients['notCompared']:,} |",
        "",
        "## Transitions",
        "",
        "A patient counts once in every row that describes a move of theirs (a new order and a higher risk, "
        "say, are two rows).",
        "",
        "| kind | transition | patients |",
        "|---|---|---:|",
    ]
    lines += transition_rows(data, "no patient's result changed")
    lines += ["", "## Examples", "", "Up to ten patients per transition, with what decided each result.", ""]
    for name, shown in data["examples"].items():
        lines += [f"### {name}", ""]
        for example in shown:
            lines.append(f"- **{example['patient']}**")
            for side in ("before", "after"):
                lines.append(f"  - {side}: {_result(example[side])}")
        lines.append("")
    return "\n".join(lines)


def _result(side: dict[str, Any]) -> str:
    result = side["result"]
    evidence = "; ".join(side["evidence"]) or "no rule fired"
    if result is None:
        return f"no result ({evidence})"
    orders = ", ".join(f"{k} ({v})" for k, v in result["orders"].items()) or "no orders"
    return f"{result['status']}, risk {result['risk']}, {orders}. Evidence: {evidence}"


def picture(data: dict[str, Any], path: Path) -> None:
    """One bar per transition, grouped by kind; the unchanged patients in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = [(f"{title}: {name}", n) for kind, title in TRANSITION_KINDS for name, n in data[kind].items()]
    fig, ax = plt.subplots(figsize=(10, max(2.5, 0.4 * len(rows) + 1.5)), constrained_layout=True)
    if rows:
        ax.barh([r[0] for r in rows][::-1], [r[1] for r in rows][::-1], color="#4c72b0")
        ax.set_xlabel("patients")
    else:
        ax.text(0.5, 0.5, "no patient's result changed", ha="center", va="center")
        ax.set_axis_off()
    p = data["patients"]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # patients are whole
    ax.set_title(
        f"{data['old']} -> {data['new']}\n{p['changed']:,} of {p['assessed']:,} patients change, "
        f"{p['unchanged']:,} unchanged"
    )
    fig.savefig(path, dpi=80)
    plt.close(fig)
