"""Screening gives, for every patient, exactly what $assess gives for that patient's Bundle."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from benchmarks.bulk_export import Export, write_export
from service.assess import Assessor
from service.errors import NeckcheckError
from service.fhir_values import parse_datetime
from service.screen.patient import results_line
from tests.screen.support import AS_OF, parameters, patient_bundles, read_ndjson, results, screen

SAMPLE = 120


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return write_export(tmp_path_factory.mktemp("export"), 400, seed=7, file_lines=700)


@pytest.fixture(scope="module")
def as_of_run(export: Export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("screen") / "out"
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "2") == 0
    return out


@pytest.fixture(scope="module")
def clock_run(export: Export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("screen") / "out"
    assert screen(export.folder, out, "--workers", "1") == 0
    return out


def by_patient(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        grouped.setdefault(resource["subject"]["reference"], []).append(resource)
    return grouped


def test_every_sampled_patient_gets_what_assess_answers(
    export: Export, as_of_run: Path, client: FlaskClient, assessor: Assessor
) -> None:
    bundles = patient_bundles(export.folder)
    lines = results(as_of_run)
    risk_assessments = by_patient(read_ndjson(as_of_run / "fhir" / "RiskAssessment.ndjson"))
    requests = by_patient(read_ndjson(as_of_run / "fhir" / "ServiceRequest.ndjson"))
    outcome_rules = {rule.outcome: rule.id for rule in assessor.table.rules}
    sample = random.Random(3).sample(sorted(bundles), SAMPLE)
    answered = 0
    for patient in sample:
        response = client.post(
            "/fhir/$assess",
            data=json.dumps(parameters(bundles[patient])),
            content_type="application/fhir+json",
        )
        if response.status_code == 422:  # no neck or face data: no line, no resources
            assert patient not in lines and patient not in risk_assessments
            continue
        assert response.status_code == 200, response.get_json()
        answered += 1
        out = [e["resource"] for e in response.get_json()["entry"]]
        assert risk_assessments[patient] == [r for r in out if r["resourceType"] == "RiskAssessment"]
        expected_requests = [r for r in out if r["resourceType"] == "ServiceRequest"]
        assert requests.get(patient, []) == expected_requests
        # the results line says what the FHIR output says
        (risk_assessment,) = risk_assessments[patient]
        line = lines[patient]
        assert line["status"] == risk_assessment["status"]
        risks = [p["qualitativeRisk"]["coding"][0]["code"] for p in risk_assessment["prediction"]]
        assert line["risk"] == max(risks, key=["negligible", "low", "moderate", "high"].index)
        fired = [outcome_rules.get(p["outcome"]["text"]) for p in risk_assessment["prediction"]]
        assert line["rules"] == [rule for rule in fired if rule]
        orders = {r["code"]["coding"][0]["code"]: r["priority"] for r in expected_requests}
        assert line["orders"] == orders
        assert line["ruleSet"] == "neckcheck-escalation 1.1.0"
    assert answered > SAMPLE * 0.8


def test_results_lines_have_exactly_the_issue_format(as_of_run: Path, export: Export) -> None:
    bundles = patient_bundles(export.folder)
    text = (as_of_run / "results.ndjson").read_text(encoding="utf-8").splitlines()
    assert text
    for raw in text:
        line = json.loads(raw)
        assert list(line) == ["patient", "status", "risk", "rules", "orders", "ask", "ruleSet"]
        assert raw.startswith(f'{{"patient": "{line["patient"]}", "status": "{line["status"]}", ')
        assert line["patient"] in bundles


def test_without_as_of_one_clock_for_the_run_recorded_and_later_evidence_used(
    export: Export, clock_run: Path, assessor: Assessor
) -> None:
    summary = json.loads((clock_run / "summary.json").read_text())
    now = parse_datetime(summary["evaluationTime"]["now"], "now")
    assert abs(dt.datetime.now(dt.UTC) - now) < dt.timedelta(minutes=10)
    bundles = patient_bundles(export.folder)
    lines = results(clock_run)
    for patient in random.Random(5).sample(sorted(lines), 60):
        result = assessor.run(bundles[patient], now=now)
        assert json.loads(results_line(patient, result)) == lines[patient]
    stamps = {r["occurrenceDateTime"] for r in read_ndjson(clock_run / "fhir" / "RiskAssessment.ndjson")}
    assert stamps == {summary["evaluationTime"]["now"]}


def test_later_dated_evidence_is_used_by_the_clock_and_not_under_as_of(
    as_of_run: Path, clock_run: Path
) -> None:
    """The export holds records dated after AS_OF (rules.md §1): ignored under --as-of, used otherwise."""
    notes_as_of = (as_of_run / "fhir" / "RiskAssessment.ndjson").read_text()
    assert "after the evaluation time" not in notes_as_of  # a collection lists them in its OperationOutcome
    differ = [p for p, line in results(as_of_run).items() if results(clock_run)[p] != line]
    assert differ, "no patient's result depends on the later-dated records"


def test_summary_counts_agree_with_the_results(as_of_run: Path, assessor: Assessor) -> None:
    summary = json.loads((as_of_run / "summary.json").read_text())
    lines = list(results(as_of_run).values())
    assert summary["patients"]["withResult"] == len(lines)
    for risk, n in summary["byRisk"].items():
        assert n == sum(line["risk"] == risk for line in lines)
    assert summary["byStatus"]["preliminary"] == sum(line["status"] == "preliminary" for line in lines)
    for rule, n in summary["patientsPerRule"].items():
        assert n == sum(rule in line["rules"] for line in lines)
    missing = {m["fact"]: m["patients"] for m in summary["missingFactsInPreliminary"]}
    preliminary = [line for line in lines if line["status"] == "preliminary"]
    assert missing == {f: sum(f in line["ask"] for line in preliminary) for f in missing}
    assert missing and all(n > 0 for n in missing.values())
    assert (as_of_run / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (as_of_run / ".work").exists()


def test_the_summary_counts_stale_readings_as_assess_finds_them(
    export: Export, as_of_run: Path, assessor: Assessor
) -> None:
    """Readings older than their fact's lookback (rules.md §1) are counted per fact, and the patients
    with any: the same readings $assess lists as not used, for every patient of the export."""
    found: Counter[str] = Counter()
    patients = 0
    for bundle in patient_bundles(export.folder).values():
        try:
            stale = assessor.run(bundle, as_of=parse_datetime(AS_OF, "asOf")).intake.stale
        except NeckcheckError:
            continue  # no fact, or refused: not in the counts
        found.update(r.fact for r in stale)
        patients += bool(stale)
    counted = json.loads((as_of_run / "summary.json").read_text())["staleReadings"]
    by_fact = {f: found[f] for f in assessor.table.facts if found[f]}  # in the rule table's order
    assert counted == {"readings": found.total(), "patients": patients, "byFact": by_fact}
    assert counted["readings"] > 0  # the export's months of records hold old readings


def test_escalation_without_a_matching_service_request(as_of_run: Path, export: Export) -> None:
    """An escalation order counts as matched only by a ServiceRequest of the patient coded as codes.json
    recognises that order (not entered-in-error or revoked); a cervical-spine MRI is no brain imaging."""
    recognised = {
        "816077007": "mri-brain",
        "34227000": "mri-brain",
        "306170007": "physiotherapy-referral",
    }
    requests: dict[str, set[str]] = {}
    for path in sorted(export.folder.glob("ServiceRequest*.ndjson")):
        for sr in read_ndjson(path):
            if sr["status"] in ("entered-in-error", "revoked"):
                continue
            coding = sr["code"]["coding"][0]
            code = coding["code"]
            neurologist = "performerType" in sr and sr["performerType"]["coding"][0]["code"] == "56397003"
            key = "neurology-referral" if code == "306206005" and neurologist else recognised.get(code)
            if coding["system"] == "https://neckcheck.org/fhir/CodeSystem/neckcheck-order":
                key = code  # neckcheck's own order code
            if key:
                requests.setdefault(sr["subject"]["reference"], set()).add(key)
    expected = {}
    for patient, line in results(as_of_run).items():
        due = [k for k in line["orders"] if k != "physiotherapy-referral"]  # the one low-risk order
        missing = [k for k in due if k not in requests.get(patient, set())]
        if missing:
            expected[patient] = sorted(missing)
    written = {
        e["patient"]: sorted(e["missing"])
        for e in read_ndjson(as_of_run / "escalation-without-referral.ndjson")
    }
    assert written == expected
    summary = json.loads((as_of_run / "summary.json").read_text())["escalationWithoutServiceRequest"]
    assert summary["patients"] == len(expected)
    matched = sum(
        1 for p, line in results(as_of_run).items() if p in requests and p not in expected and line["orders"]
    )
    assert matched > 0, "no referral in the data matched: the comparison was not exercised"


def test_a_manifest_gives_the_same_results_as_the_folder(
    export: Export, as_of_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert screen(export.manifest, out, "--as-of", AS_OF, "--workers", "1") == 0
    assert (out / "results.ndjson").read_bytes() == (as_of_run / "results.ndjson").read_bytes()
