"""``neckcheck rules diff OLD NEW --corpus INPUT``: every patient assessed under two rule tables in one pass.

The export is read once, as screening reads it (the same reader, limits and spill into patient-hash
partitions), and each patient's resources, grouped once, go through screening's own ``screen_group`` under
each table: a patient's "before" and "after" are exactly the results.ndjson lines ``neckcheck screen``
would write under each table, so the impact of a change is measured with the engine that will run it.

Only patients whose result differs are written (changes.ndjson); impact.json counts them by transition
and keeps up to ``EXAMPLES`` of each, with the rationale of the RiskAssessment on each side (the facts
and the evidence that decided it), for the committee report.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.assess import Assessor
from service.rules.compare import result_transitions
from service.screen.inputs import list_inputs
from service.screen.job import evaluation_time
from service.screen.partitions import MAX_PATIENT_BYTES, Task, grouped, screen_group
from service.screen.patient import EvaluationTime, Outcome
from service.screen.places import check_apart, check_files_apart
from service.screen.reader import Limits
from service.screen.spill import chunks, read_spilled, spill_chunk
from service.screen.workdir import WorkDir, read_ledger

CHANGES = "changes.ndjson"
IMPACT = "impact.json"
COMPARED_FIELDS = ("status", "risk", "rules", "orders")  # of results.ndjson, as the issue names them
EXAMPLES = 10  # patients shown per transition
PARTITIONS = 16  # patient-hash partitions: what is grouped in memory at once is about 1/16 of the export


@dataclass
class Impact:
    """The counts of impact.json, built patient by patient."""

    old: str
    new: str
    evaluation_time: dict[str, str]
    assessed: int = 0  # patients with a result under at least one table
    unchanged: int = 0
    not_compared: int = 0  # no fact, refused or over the size limit under both tables
    changed: int = 0
    transitions: dict[str, Counter[str]] = field(
        default_factory=lambda: {k: Counter() for k in ("risk", "status", "orders", "rules")}
    )
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, patient: str, before: Outcome, after: Outcome) -> dict[str, Any] | None:
        """Count one patient; its changes.ndjson record when its result differs."""
        was, now = _compared(before), _compared(after)
        if was is None and now is None:
            self.not_compared += 1
            return None
        self.assessed += 1
        if was == now:
            self.unchanged += 1
            return None
        self.changed += 1
        found = list(result_transitions(was or {}, now or {}))
        for kind, name in found:
            self.transitions[kind][name] += 1
            shown = self.examples.setdefault(f"{kind}: {name}", [])
            if len(shown) < EXAMPLES:
                shown.append({"patient": patient, "before": _why(before), "after": _why(after)})
        return {"patient": patient, "before": was, "after": now}

    def to_json(self) -> dict[str, Any]:
        t = self.transitions
        return {
            "old": self.old,
            "new": self.new,
            "evaluationTime": self.evaluation_time,
            "patients": {
                "assessed": self.assessed,
                "changed": self.changed,
                "unchanged": self.unchanged,
                "notCompared": self.not_compared,
            },
            "risk": dict(sorted(t["risk"].items())),
            "status": dict(sorted(t["status"].items())),
            "orders": dict(sorted(t["orders"].items())),
            "rules": dict(sorted(t["rules"].items())),
            "examples": self.examples,
        }


def _compared(outcome: Outcome) -> dict[str, Any] | None:
    if outcome.line is None:
        return None
    line = json.loads(outcome.line)
    return {name: line[name] for name in COMPARED_FIELDS}


def _why(outcome: Outcome) -> dict[str, Any]:
    """What decided the result: its fields and the RiskAssessment's rationale per outcome (each names the
    rule and the facts, with their values, that made it fire)."""
    if outcome.line is None:
        reason = outcome.error["problems"][:1] if outcome.error else ["no fact the rules read"]
        return {"result": None, "evidence": reason}
    found = [r for r in outcome.resources if r.get("resourceType") == "RiskAssessment"]
    rationale = [p.get("rationale", "") for r in found for p in r.get("prediction", [])]
    return {"result": _compared(outcome), "evidence": [text.split(". ")[0] for text in rationale if text]}


def run_impact(
    old: Assessor,
    new: Assessor,
    source: Path,
    out: Path,
    when: EvaluationTime,
    names: tuple[str, str],
    limits: Limits | None = None,
) -> Impact:
    """Assess every patient of the export under both tables; writes OUTDIR/changes.ndjson, returns the
    counts (the caller writes impact.json and the report)."""
    check_apart(source, out)
    files = list_inputs(source, ())
    check_files_apart(files, out)
    out.mkdir(parents=True, exist_ok=True)
    impact = Impact(names[0], names[1], _evaluation_time(when))
    with tempfile.TemporaryDirectory(prefix=".rules-diff-", dir=out) as tmp:
        work = WorkDir(Path(tmp))
        pieces = [c for f in files for c in chunks(f)]
        spilled = {}
        for chunk in pieces:
            spill_chunk(chunk, work, PARTITIONS, limits or Limits())
            spilled[chunk.name] = read_spilled(read_ledger(work.spilled(chunk.name)))
        with (out / CHANGES).open("w", encoding="utf-8") as changes:
            for p in range(PARTITIONS):
                found = [(work.piece(p, c.name), spilled[c.name].pieces.get(p)) for c in pieces]
                task = Task(p, [(path, e) for path, e in found if e is not None], when, MAX_PATIENT_BYTES)
                for patient, lines, _, _ in grouped(task):
                    if lines is None:  # over the size limit: refused under either table
                        impact.not_compared += 1
                        continue
                    record = impact.add(
                        patient,
                        screen_group(old, patient, lines, when),
                        screen_group(new, patient, lines, when),
                    )
                    if record is not None:
                        changes.write(json.dumps(record, ensure_ascii=False) + "\n")
    (out / IMPACT).write_text(json.dumps(impact.to_json(), indent=1, ensure_ascii=False) + "\n", "utf-8")
    return impact


def diff_corpus(old: Path, new: Path, source: Path, out: Path, as_of: str | None, words: list[str]) -> str:
    """The whole command: both tables loaded as the service loads them, the pass, the report; returns the
    lines for the terminal."""
    from service.screen.impact_report import write_report

    when = evaluation_time(as_of)
    tables = Assessor.load(old), Assessor.load(new)
    names = (_name(tables[0], old), _name(tables[1], new))
    impact = run_impact(*tables, source, out, when, names)
    write_report(out, impact.to_json(), words)
    return (
        f"{impact.changed:,} of {impact.assessed:,} patients change ({impact.unchanged:,} unchanged, "
        f"{impact.not_compared:,} not compared); "
        f"written to {out}/ ({CHANGES}, {IMPACT}, impact.md, impact.png)"
    )


def _name(assessor: Assessor, path: Path) -> str:
    """The table as the committee knows it; a file of one's own is named too (a candidate often keeps
    the version it was copied from until it is approved)."""
    table = assessor.table
    packaged = path.name == f"{table.id}-{table.version}.json"
    return f"{table.id} {table.version}" + ("" if packaged else f" ({path.name})")


def _evaluation_time(when: EvaluationTime) -> dict[str, str]:
    from service.fhir_values import fhir_datetime

    if when.as_of is not None:
        return {"asOf": fhir_datetime(when.as_of)}
    assert when.now is not None
    return {"now": fhir_datetime(when.now)}
