"""fhir/MeasureReport.ndjson: the run as MeasureReports of Measure/neckcheck-escalation-gap, valid FHIR,
with the counts of summary.json, and those counts what results.ndjson and the unmatched list say."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks.bulk_export import Export, write_export
from service.assess import Assessor
from service.screen.reconcile import Unsound, reconcile
from tests.screen.support import AS_OF, read_ndjson, results, screen
from tests.support import validate_fhir

MEASURE = "https://neckcheck.org/fhir/Measure/neckcheck-escalation-gap|1.1.0"
REPORTS = Path("fhir") / "MeasureReport.ndjson"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return write_export(tmp_path_factory.mktemp("export"), 300, seed=23, file_lines=500)


@pytest.fixture(scope="module")
def run(export: Export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("screen") / "out"
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "2", "--subject-reports") == 0
    return out


def populations(group: dict[str, Any]) -> dict[str, int]:
    return {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}


def expected(out: Path, assessor: Assessor) -> dict[str, Any]:
    """The measure counted from results.ndjson and escalation-without-referral.ndjson, with the rule
    table: due = an order of a moderate- or high-risk rule proposed; ordered = due and not listed."""
    escalating = {o.order for r in assessor.table.rules if r.risk in ("moderate", "high") for o in r.orders}
    unmatched = {line["patient"] for line in read_ndjson(out / "escalation-without-referral.ndjson")}
    lines = results(out)
    due = {p for p, line in lines.items() if set(line["orders"]) & escalating}
    ordered = due - unmatched

    def counts(patients: set[str]) -> dict[str, int]:
        return {
            "initial-population": len(patients),
            "denominator": len(patients & due),
            "numerator": len(patients & ordered),
        }

    by_rule = {
        rule.id: counts({p for p, line in lines.items() if rule.id in line["rules"]})
        for rule in assessor.table.rules
    }
    return {"total": counts(set(lines)), "byRule": by_rule, "due": due, "ordered": ordered}


def test_every_line_is_a_valid_measure_report_of_the_measure(run: Path) -> None:
    reports = read_ndjson(run / REPORTS)
    for report in reports:
        validate_fhir(report)
        assert report["measure"] == MEASURE and report["status"] == "complete"
        assert report["period"] == {"start": AS_OF, "end": AS_OF}
    assert [r["type"] for r in reports].count("summary") == 1
    assert reports[-1]["type"] == "summary" and "subject" not in reports[-1]
    assert len({r["id"] for r in reports}) == len(reports)


def test_the_summary_report_counts_what_summary_json_and_the_results_say(
    run: Path, assessor: Assessor
) -> None:
    report = read_ndjson(run / REPORTS)[-1]
    (group,) = report["group"]
    want = expected(run, assessor)
    assert populations(group) == want["total"]
    assert want["total"]["denominator"] > 50 and want["total"]["numerator"] > 0
    assert group["measureScore"]["value"] == pytest.approx(len(want["ordered"]) / len(want["due"]))
    strata = {s["code"][0]["text"]: s["stratum"] for s in group["stratifier"]}
    assert list(strata) == [rule.id for rule in assessor.table.rules]
    for rule, (fired, rest) in strata.items():
        assert (fired["value"]["text"], rest["value"]["text"]) == ("true", "false")
        assert populations(fired) == want["byRule"][rule], rule
        total, part = want["total"], want["byRule"][rule]
        assert populations(rest) == {k: total[k] - part[k] for k in total}, rule
    summary = json.loads((run / "summary.json").read_text())["measure"]
    names = {
        "initial-population": "initialPopulation",
        "denominator": "denominator",
        "numerator": "numerator",
    }
    assert {names[k]: n for k, n in want["total"].items()} == {k: summary[k] for k in names.values()}
    assert summary["subjectReports"] == len(want["due"])
    assert summary["byRule"] == {
        rule: {names[k]: n for k, n in counts.items()} for rule, counts in want["byRule"].items()
    }


def test_one_individual_report_per_patient_with_escalation_due(run: Path, assessor: Assessor) -> None:
    want = expected(run, assessor)
    individual = [r for r in read_ndjson(run / REPORTS) if r["type"] == "individual"]
    by_patient = {r["subject"]["reference"]: r for r in individual}
    assert len(by_patient) == len(individual) and set(by_patient) == want["due"]
    risk_assessments = {
        ra["subject"]["reference"]: ra["id"] for ra in read_ndjson(run / "fhir" / "RiskAssessment.ndjson")
    }
    for patient, report in by_patient.items():
        (group,) = report["group"]
        in_numerator = int(patient in want["ordered"])
        assert populations(group) == {"initial-population": 1, "denominator": 1, "numerator": in_numerator}
        assert group["measureScore"] == {"value": float(in_numerator)}
        assert report["evaluatedResource"] == [{"reference": f"RiskAssessment/{risk_assessments[patient]}"}]


def test_without_subject_reports_only_the_summary_report(export: Export, run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "1") == 0
    (report,) = read_ndjson(out / REPORTS)
    assert report == read_ndjson(run / REPORTS)[-1]  # the same counts, the same id
    assert json.loads((out / "summary.json").read_text())["measure"]["subjectReports"] == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda lines: lines[1:], "measure.subjectReports is"),  # an individual report lost
        (lambda lines: lines[:-1], "summary MeasureReports is 1 but fhir/MeasureReport.ndjson has 0"),
        (lambda lines: [*lines, lines[-1]], "summary MeasureReports is 1"),
    ],
)
def test_the_recount_refuses_measure_reports_that_disagree(
    run: Path, tmp_path: Path, change: Any, named: str
) -> None:
    out = tmp_path / "out"
    shutil.copytree(run, out)
    lines = (out / REPORTS).read_text().splitlines(keepends=True)
    (out / REPORTS).write_text("".join(change(lines)))
    data = json.loads((out / "summary.json").read_text())
    with pytest.raises(Unsound, match=re.escape(named)):
        reconcile(out, data)


def test_the_recount_refuses_a_measure_section_the_other_files_contradict(run: Path) -> None:
    """One more patient in the numerator, in summary.json and its report alike: the unmatched list says
    otherwise."""
    data = json.loads((run / "summary.json").read_text())
    reconcile(run, data)  # as written: sound
    data["measure"]["numerator"] += 1
    with pytest.raises(Unsound, match=re.escape("measure.denominator - numerator is")):
        reconcile(run, data)
