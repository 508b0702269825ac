"""fhir/MeasureReport.ndjson: the run as MeasureReports of the escalation-gap Measure (Measure/
neckcheck-escalation-gap, service/output/measure.py).

With ``--subject-reports`` each patient of the denominator gets an ``individual`` report, written with the
patient's other outputs (so a partition's file is whole or absent like the rest); the run's ``summary``
report is the file's last line, made from the counts summary.json gives under ``measure``, once every
partition is gathered. The evaluation time is the period: the records as they stood then.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from service.assess import Assessor
from service.fhir_values import fhir_datetime
from service.output.measure import Counts, Tallies, individual_report, measure_canonical, summary_report
from service.screen.patient import EvaluationTime, Outcome
from service.screen.tally import ResultTally
from service.screen.workdir import sync_folder

MEASURE_REPORTS = "fhir/MeasureReport.ndjson"
POPULATION_KEYS = ("initialPopulation", "denominator", "numerator")


class SubjectReports:
    """Builds a patient's individual report, when the run asked for them and the patient is in the
    denominator (escalation due)."""

    def __init__(self, assessor: Assessor, when: EvaluationTime, wanted: bool):
        stamp = when.as_of or when.now
        assert stamp is not None, "an evaluation time is as-of or the run's clock"
        self.assessor, self.instant, self.wanted = assessor, fhir_datetime(stamp), wanted

    def report(self, outcome: Outcome) -> dict[str, Any] | None:
        if not self.wanted or not outcome.escalation:
            return None
        (risk_assessment,) = (r for r in outcome.resources if r["resourceType"] == "RiskAssessment")
        a = self.assessor
        ordered = not outcome.unmatched
        return individual_report(
            a.table, a.book, self.instant, outcome.patient, ordered, risk_assessment["id"]
        )


def measure_section(results: ResultTally, assessor: Assessor, subject_reports: bool) -> dict[str, Any]:
    """summary.json's ``measure``: the populations overall and per fired rule, and the reports written."""
    table, book = assessor.table, assessor.book
    due = results.patients["escalation due"]
    return {
        "measure": measure_canonical(table, book),
        **_populations(results.patients["with a result"], due, results.patients["escalation ordered"]),
        "byRule": {
            rule.id: _populations(
                results.rules[rule.id], results.rules_due[rule.id], results.rules_ordered[rule.id]
            )
            for rule in table.rules
        },
        "subjectReports": due if subject_reports else 0,
        "file": MEASURE_REPORTS,
    }


def _populations(initial: int, denominator: int, numerator: int) -> dict[str, int]:
    return dict(zip(POPULATION_KEYS, (initial, denominator, numerator), strict=True))


def _counts(populations: dict[str, int]) -> Counts:
    return Counts(*(int(populations[key]) for key in POPULATION_KEYS))


def tallies(section: dict[str, Any]) -> Tallies:
    """summary.json's ``measure`` section as the publisher's counts."""
    return Tallies(_counts(section), {rule: _counts(p) for rule, p in section["byRule"].items()})


def append_summary_report(folder: Path, data: dict[str, Any], assessor: Assessor) -> None:
    """The summary report as the last line of ``folder``'s MeasureReport.ndjson, durable before the
    recount reads it (a resumed run gathers the file again, so it is never appended twice)."""
    (instant,) = data["evaluationTime"].values()
    report = summary_report(assessor.table, assessor.book, instant, tallies(data["measure"]))
    path = folder / MEASURE_REPORTS
    with path.open("ab") as out:
        out.write(orjson.dumps(report) + b"\n")
        out.flush()
        os.fsync(out.fileno())
    sync_folder(path.parent)
