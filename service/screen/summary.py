"""summary.json and summary.png: what a quality team reads first.

Counts by risk and status, patients per fired rule, the facts most often missing in preliminary results,
and "escalation due, no matching ServiceRequest in the data": patients for whom a moderate- or high-risk
rule proposes an order that none of their own ServiceRequests matches by code (codes.json
``draftOrderRecognition``, as for CDS Hooks draft orders).

The JSON keys are the rule table's (fact, order and rule ids); ``displayNames`` gives each its name for
people (codes.json's displays, the rule titles), which is what the picture shows, with the counts on the
bars: a quality team reads "Symptoms getting worse: 41", not ``symptoms-worsening``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.assess import Assessor
from service.rules.table import RISKS
from service.screen.measure_reports import measure_section
from service.screen.outputs import INPUT_PROBLEMS, NOT_ASSESSED, UNMATCHED
from service.screen.tally import InputTally, ResultTally
from service.screen.workdir import write_atomically

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STATUSES = ("final", "preliminary")
SUMMARY, PICTURE = "summary.json", "summary.png"
LABEL_WIDTH = 30  # characters per line of a bar's name in the picture


def summary(
    inputs: InputTally,
    results: ResultTally,
    assessor: Assessor,
    files: int,
    run: dict[str, Any],
    subject_reports: bool = False,
) -> dict[str, Any]:
    table, book = assessor.table, assessor.book
    missing = sorted(results.ask.items(), key=lambda item: (-item[1], item[0]))
    return {
        "ruleSet": f"{table.id} {table.version}",
        **run,
        "input": {
            "files": files,
            "lines": dict(sorted(inputs.lines.items())),
            "resources": dict(sorted(inputs.types.items())),
            "skippedTypes": dict(sorted(inputs.skipped.items())),
            "noPatientSubject": dict(sorted(inputs.no_patient.items())),
            "malformedByFile": dict(sorted(inputs.malformed.items())),
            "tooLongByFile": dict(sorted(inputs.too_long.items())),
            "tooLargeFiles": sorted(inputs.too_large),
            "problemsFile": INPUT_PROBLEMS,
        },
        "patients": {
            "withResult": results.patients["with a result"],
            "noFacts": results.patients["no facts"],
            "notAssessed": results.patients["not assessed"],
            "notAssessedByStatus": dict(sorted(results.not_assessed.items())),
            "notAssessedFile": NOT_ASSESSED,
        },
        "byRisk": {risk: results.risk[risk] for risk in RISKS},
        "byStatus": {status: results.status[status] for status in STATUSES},
        "byRiskAndStatus": {f"{r} {s}": results.risk_status[f"{r} {s}"] for r in RISKS for s in STATUSES},
        "patientsPerRule": {rule.id: results.rules[rule.id] for rule in table.rules},
        "missingFactsInPreliminary": [{"fact": fact, "patients": n} for fact, n in missing],
        # readings older than their fact's lookback (rules.md §1): not used, so they count as unknown
        "staleReadings": {
            "readings": sum(results.stale.values()),
            "patients": results.patients["with stale readings"],
            "byFact": {fact: results.stale[fact] for fact in table.facts if results.stale[fact]},
        },
        "escalationWithoutServiceRequest": {
            "patients": results.unmatched_patients,
            "byOrder": {
                key: {"due": results.escalation[key], "noServiceRequest": results.unmatched[key]}
                for key in sorted(results.escalation)
            },
            "file": UNMATCHED,
        },
        "measure": measure_section(results, assessor, subject_reports),
        "displayNames": {
            "facts": {fact: book.fact_display(fact) for fact in table.facts},
            "orders": {key: book.order_display(key) for key in table.orders},
            "rules": {rule.id: rule.title for rule in table.rules},
        },
    }


def write_summary(folder: Path, data: dict[str, Any]) -> None:
    """The picture first: summary.json, written last and atomically, is the mark of a finished run."""
    picture(data, folder / PICTURE)
    write_atomically(
        folder / SUMMARY, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    )


def picture(data: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = figure(data)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def figure(data: dict[str, Any]) -> Figure:
    """Four panels: risk by status, patients per rule, missing facts, escalations without a referral;
    each bar named as people name it and labelled with its count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = data["displayNames"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    (risk_ax, rule_ax), (ask_ax, esc_ax) = axes
    bottom = [0] * len(RISKS)
    for status, colour in zip(STATUSES, ("#4c72b0", "#dd8452"), strict=True):
        counts = [data["byRiskAndStatus"][f"{r} {status}"] for r in RISKS]
        bars = risk_ax.bar(RISKS, counts, bottom=bottom, label=status, color=colour)
        risk_ax.bar_label(bars, labels=[f"{c:,}" if c else "" for c in counts], label_type="center")
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    risk_ax.bar_label(risk_ax.containers[-1], labels=[f"{t:,}" for t in bottom], padding=2)
    risk_ax.margins(y=0.1)
    risk_ax.set_title("Patients by risk and status (total above each bar)")
    risk_ax.legend()
    rules = data["patientsPerRule"]
    _bars(rule_ax, [names["rules"][r] for r in rules], list(rules.values()), "#55a868")
    rule_ax.set_title("Patients per fired rule")
    missing = data["missingFactsInPreliminary"][:10]
    facts = [names["facts"][m["fact"]] for m in missing]
    _bars(ask_ax, facts, [m["patients"] for m in missing], "#c44e52")
    ask_ax.set_title("Facts most often missing in preliminary results (patients)")
    orders = data["escalationWithoutServiceRequest"]["byOrder"]
    keys = list(orders)
    positions = range(len(keys))
    for offset, field, label, colour in (
        (-0.2, "due", "escalation due", "#4c72b0"),
        (0.2, "noServiceRequest", "no matching ServiceRequest", "#8172b3"),
    ):
        counts = [orders[k][field] for k in keys]
        bars = esc_ax.barh([p + offset for p in positions], counts, 0.4, label=label, color=colour)
        esc_ax.bar_label(bars, fmt="{:,.0f}", padding=3)
    esc_ax.set_yticks(list(positions), [_wrapped(names["orders"][k]) for k in keys])
    esc_ax.invert_yaxis()
    esc_ax.margins(x=0.15)  # room for the counts beyond the longest bar
    unmatched = data["escalationWithoutServiceRequest"]["patients"]
    esc_ax.set_title(f"Escalation due vs no matching ServiceRequest\nin the data ({unmatched:,} patients)")
    esc_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    total = data["patients"]["withResult"]
    fig.suptitle(f"neckcheck screen: {total:,} patients with a result ({data['ruleSet']})")
    return fig


def _bars(ax: Axes, labels: list[str], counts: list[int], colour: str) -> None:
    """Horizontal bars, first at the top, each with its count at its end."""
    bars = ax.barh([_wrapped(label) for label in labels], counts, color=colour)
    ax.bar_label(bars, fmt="{:,.0f}", padding=3)
    ax.invert_yaxis()
    ax.margins(x=0.15)


def _wrapped(label: str, width: int = LABEL_WIDTH) -> str:
    return textwrap.fill(label, width)
