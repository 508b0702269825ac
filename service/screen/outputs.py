"""The files a screening run writes, and the one writer both engines use.

OUTDIR/results.ndjson        one line per patient with a fact (the issue's exact line)
OUTDIR/fhir/*.ndjson         the RiskAssessments and draft ServiceRequests, one resource a line, ready for
                             a FHIR server's bulk $import (ids are the deterministic ones of $assess), and
                             the MeasureReports (measure_reports.py)
OUTDIR/not-assessed.ndjson   patients the engine refused, with the reason (the OperationOutcome's text)
OUTDIR/escalation-without-referral.ndjson   patients whose escalation orders have no ServiceRequest
OUTDIR/input-problems.ndjson malformed lines and resources with no Patient subject, by file and line
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType

import orjson

from service.screen.measure_reports import MEASURE_REPORTS, SubjectReports
from service.screen.patient import Outcome
from service.screen.workdir import Entry, LineFile, sync_folder

RESULTS = "results.ndjson"
RISK_ASSESSMENTS = "fhir/RiskAssessment.ndjson"
SERVICE_REQUESTS = "fhir/ServiceRequest.ndjson"
NOT_ASSESSED = "not-assessed.ndjson"
UNMATCHED = "escalation-without-referral.ndjson"
INPUT_PROBLEMS = "input-problems.ndjson"
PER_PATIENT = (RESULTS, RISK_ASSESSMENTS, SERVICE_REQUESTS, NOT_ASSESSED, UNMATCHED, MEASURE_REPORTS)


class OutcomeWriter:
    """Appends outcomes to the per-patient files under ``folder`` (a partition's, or OUTDIR itself); once
    closed, the files are durable and ``entries`` says what each holds (for a partition's ledger).
    ``reports`` makes a patient's individual MeasureReport (None: none are written)."""

    def __init__(self, folder: Path, reports: SubjectReports | None = None):
        (folder / "fhir").mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.reports = reports
        self.files = {name: LineFile(folder / name) for name in PER_PATIENT}
        self.entries: dict[str, Entry] = {}

    def write(self, outcome: Outcome) -> None:
        if outcome.line is not None:
            self.files[RESULTS].write(outcome.line.encode("utf-8") + b"\n")
        for resource in outcome.resources:
            name = RISK_ASSESSMENTS if resource["resourceType"] == "RiskAssessment" else SERVICE_REQUESTS
            self.files[name].write(orjson.dumps(resource) + b"\n")
        if outcome.error is not None:
            self.files[NOT_ASSESSED].write(_line(outcome.error))
        if outcome.unmatched:
            missing = {"patient": outcome.patient, "missing": list(outcome.unmatched)}
            self.files[UNMATCHED].write(_line(missing))
        report = self.reports.report(outcome) if self.reports is not None else None
        if report is not None:
            self.files[MEASURE_REPORTS].write(orjson.dumps(report) + b"\n")

    def close(self) -> None:
        if not self.entries:
            self.entries = {name: out.close() for name, out in self.files.items()}
            sync_folder(self.folder / "fhir")
            sync_folder(self.folder)

    def __enter__(self) -> OutcomeWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def problem_line(file: str, line: int, kind: str, problem: str) -> bytes:
    return _line({"file": file, "line": line, "kind": kind, "problem": problem})


def _line(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8") + b"\n"
