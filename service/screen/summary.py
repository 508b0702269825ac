"""summary.json and summary.png: what a quality team reads first.

Counts by risk and status, patients per fired rule, the facts most often missing in preliminary results,
and "escalation due, no matching ServiceRequest in the data": patients for whom a moderate- or high-risk
rule proposes an order that none of their own ServiceRequests matches by code (codes.json
``draftOrderRecognition``, as for CDS Hooks draft orders).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.rules.table import RISKS, RuleTable
from service.screen.outputs import INPUT_PROBLEMS, NOT_ASSESSED, UNMATCHED
from service.screen.tally import InputTally, ResultTally
from service.screen.workdir import write_atomically

STATUSES = ("final", "preliminary")
SUMMARY, PICTURE = "summary.json", "summary.png"


def summary(
    inputs: InputTally, results: ResultTally, table: RuleTable, files: int, run: dict[str, Any]
) -> dict[str, Any]:
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
    }


def write_summary(folder: Path, data: dict[str, Any]) -> None:
    """The picture first: summary.json, written last and atomically, is the mark of a finished run."""
    picture(data, folder / PICTURE)
    write_atomically(
        folder / SUMMARY, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    )


def picture(data: dict[str, Any], path: Path) -> None:
    """Four panels: risk by status, patients per rule, missing facts, escalations without a referral."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    (risk_ax, rule_ax), (ask_ax, esc_ax) = axes
    bottom = [0] * len(RISKS)
    for status, colour in zip(STATUSES, ("#4c72b0", "#dd8452"), strict=True):
        counts = [data["byRiskAndStatus"][f"{r} {status}"] for r in RISKS]
        risk_ax.bar(RISKS, counts, bottom=bottom, label=status, color=colour)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    risk_ax.set_title("Patients by risk and status")
    risk_ax.legend()
    rules = data["patientsPerRule"]
    rule_ax.barh(list(rules), list(rules.values()), color="#55a868")
    rule_ax.invert_yaxis()
    rule_ax.set_title("Patients per fired rule")
    missing = data["missingFactsInPreliminary"][:10]
    ask_ax.barh([m["fact"] for m in missing], [m["patients"] for m in missing], color="#c44e52")
    ask_ax.invert_yaxis()
    ask_ax.set_title("Facts most often missing in preliminary results")
    orders = data["escalationWithoutServiceRequest"]["byOrder"]
    names = list(orders)
    positions = range(len(names))
    esc_ax.bar([p - 0.2 for p in positions], [orders[n]["due"] for n in names], 0.4, label="escalation due")
    esc_ax.bar(
        [p + 0.2 for p in positions],
        [orders[n]["noServiceRequest"] for n in names],
        0.4,
        label="no matching ServiceRequest",
        color="#8172b3",
    )
    esc_ax.set_xticks(list(positions), names)
    unmatched = data["escalationWithoutServiceRequest"]["patients"]
    esc_ax.set_title(f"Escalation due vs no matching ServiceRequest\nin the data ({unmatched:,} patients)")
    esc_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    total = data["patients"]["withResult"]
    fig.suptitle(f"neckcheck screen: {total:,} patients with a result ({data['ruleSet']})")
    fig.savefig(path, dpi=80)
    plt.close(fig)
