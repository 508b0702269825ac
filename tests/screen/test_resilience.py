"""Bad lines, unknown types, unreadable inputs and interruptions: counted, reported, never a stopped run."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.bulk_export import Export, write_export
from service.screen.inputs import list_inputs
from service.screen.job import Job, evaluation_time
from service.screen.local import run_local
from service.screen.progress import LineProgress
from service.screen.spill import chunks
from tests.screen.support import (
    AS_OF,
    INTERRUPTIBLE,
    ROOT,
    finding,
    read_ndjson,
    results,
    screen,
    sorted_lines,
)

NECKCHECK = [sys.executable, "-m", "service.cli"]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return write_export(tmp_path_factory.mktemp("export"), 200, seed=11, bad_lines=6)


def test_bad_lines_are_reported_by_file_and_line_and_change_nothing_else(
    export: Export, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "1") == 0
    problems = read_ndjson(out / "input-problems.ndjson")
    assert sorted((p["file"], p["line"]) for p in problems) == sorted(export.bad)
    assert {p["kind"] for p in problems} == {"malformed"}
    assert all(p["problem"] for p in problems)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["lines"]["malformed"] == len(export.bad)
    by_file: dict[str, int] = {}
    for file, _ in export.bad:
        by_file[file] = by_file.get(file, 0) + 1
    assert summary["input"]["malformedByFile"] == by_file
    # the same export without its bad lines gives the same results
    clean = tmp_path / "clean"
    clean.mkdir()
    for path in export.folder.glob("*.ndjson"):
        bad = {line for file, line in export.bad if file == path.name}
        kept = [text for n, text in enumerate(path.read_text().splitlines(), 1) if n not in bad]
        (clean / path.name).write_text("".join(t + "\n" for t in kept))
    assert screen(clean, tmp_path / "clean-out", "--as-of", AS_OF, "--workers", "1") == 0
    assert results(tmp_path / "clean-out") == results(out)


def test_unknown_types_are_skipped_and_counted_and_subjectless_facts_reported(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export", 60, seed=2)
    expected: dict[str, int] = {}
    for path in export.folder.glob("*.ndjson"):
        for resource in read_ndjson(path):
            kind = resource["resourceType"]
            if kind not in ("Observation", "QuestionnaireResponse", "Patient", "Encounter", "ServiceRequest"):
                expected[kind] = expected.get(kind, 0) + 1
    extra = [
        {"resourceType": "Basic", "id": "b1", "code": {"text": "x"}},
        finding("Patient/a\tb", "o-tab"),  # not a FHIR id: a tab or newline in it broke the spill
        finding("Patient/a\nb", "o-newline"),
        {"resourceType": "Observation", "id": "o-no-subject", "status": "final", "code": {"text": "x"}},
        {
            "resourceType": "Observation",
            "id": "o-device",
            "status": "final",
            "subject": {"reference": "Device/d1"},
        },
    ]
    (export.folder / "Extra.ndjson").write_text("".join(json.dumps(r) + "\n" for r in extra) + "\n")
    expected["Basic"] = 1
    out = tmp_path / "out"
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "1") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["skippedTypes"] == dict(sorted(expected.items()))
    assert summary["input"]["noPatientSubject"] == {"Observation": 4}
    assert summary["input"]["lines"]["blank"] == 1
    problems = read_ndjson(out / "input-problems.ndjson")
    assert [(p["file"], p["line"], p["kind"]) for p in problems] == [
        ("Extra.ndjson", line, "no-patient") for line in (2, 3, 4, 5)
    ]


def test_a_truncated_gzip_file_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export", 40, seed=3, gz=True)
    path = export.folder / "Observation.000.ndjson.gz"
    whole = gzip.decompress(path.read_bytes()).count(b"\n")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = tmp_path / "out"
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "1") == 0
    (problem,) = read_ndjson(out / "input-problems.ndjson")
    assert problem["file"] == path.name and problem["kind"] == "malformed"
    assert 1 < problem["line"] < whole
    assert "cannot be read past this line" in problem["problem"]
    assert results(out)


def test_a_patient_the_engine_refuses_is_listed_with_the_reason(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    good = finding("Patient/p1", "ok")
    bad = {
        **good,
        "id": "two",
        "subject": {"reference": "Patient/p2"},
        "valueString": "x",
        "effectiveDateTime": 5,
    }
    (folder / "Observation.ndjson").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    out = tmp_path / "out"
    assert screen(folder, out, "--as-of", AS_OF, "--workers", "1") == 0
    assert list(results(out)) == ["Patient/p1"]
    (refused,) = read_ndjson(out / "not-assessed.ndjson")
    assert refused["patient"] == "Patient/p2" and refused["status"] == 400 and refused["problems"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["patients"]["notAssessed"] == 1 and summary["patients"]["notAssessedByStatus"] == {
        "400": 1
    }


def test_unusable_inputs_exit_2_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert screen(tmp_path / "missing", tmp_path / "out") == 2
    assert "no such file or directory" in capsys.readouterr().err
    manifest = tmp_path / "export.json"
    manifest.write_text(
        json.dumps({"output": [{"type": "Patient", "url": "https://ehr.example.org/x.ndjson"}]})
    )
    assert screen(manifest, tmp_path / "out") == 2
    assert "download the export first" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert screen(tmp_path / "empty", tmp_path / "out") == 2
    assert "no *.ndjson" in capsys.readouterr().err


def _start(export: Export, out: Path, *args: str) -> subprocess.Popen[str]:
    command = [*INTERRUPTIBLE, "screen", str(export.folder), "--out", str(out), "--workers", "1", *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_interrupted_run_continues_where_it_stopped_and_counts_no_patient_twice(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export", 1500, seed=5)
    whole = tmp_path / "whole"
    assert screen(export.folder, whole, "--workers", "1", "--partitions", "64", "--as-of", AS_OF) == 0
    out = tmp_path / "out"
    # no --as-of: the clock read at the start is recorded and reused when the run continues
    run = _start(export, out, "--partitions", "64")
    parts = out / ".work" / "parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len([p for p in parts.glob("p*") if "." not in p.name]) < 2:
        assert run.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)  # a crash: nothing gets to clean up
    run.wait()
    assert not (out / "summary.json").exists()
    done = {p.name for p in parts.iterdir() if "." not in p.name}
    assert 2 <= len(done) < 64
    recorded = json.loads((out / ".work" / "run.json").read_text())["evaluationTime"]["now"]
    # the same command again, a moment later: continues, with the recorded clock
    assert screen(export.folder, out, "--workers", "1") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluationTime"] == {"now": recorded}
    assert len(results(out)) == len(results(whole))  # results() fails on a patient counted twice
    assert summary["patients"]["withResult"] == len(results(out))
    assert sorted(results(out)) == sorted(results(whole))


def test_sigint_stops_with_exit_130_and_the_same_command_continues(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export", 1200, seed=6)
    out = tmp_path / "out"
    run = _start(export, out, "--partitions", "64", "--as-of", AS_OF, "--workers", "2")  # a pool to stop
    parts = out / ".work" / "parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("." not in p.name for p in parts.glob("p*")):
        assert run.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.01)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "run the same command again to continue" in err
    assert "Traceback" not in err  # the workers leave Ctrl-C to the parent
    # other settings on the same OUTDIR: refused, nothing mixed
    assert screen(export.folder, out, "--workers", "1", "--as-of", "2026-01-01T00:00:00Z") == 2
    assert screen(export.folder, out, "--workers", "2", "--as-of", AS_OF) == 0
    fresh = tmp_path / "fresh"
    assert screen(export.folder, fresh, "--workers", "2", "--as-of", AS_OF, "--partitions", "64") == 0
    assert sorted_lines(out / "results.ndjson") == sorted_lines(fresh / "results.ndjson")
    assert (out / "results.ndjson").read_bytes() == (fresh / "results.ndjson").read_bytes()
    assert os.listdir(out / "fhir") == os.listdir(fresh / "fhir")


def test_large_files_read_in_chunks_give_the_same_outputs_and_line_numbers(
    export: Export, tmp_path: Path
) -> None:
    whole = tmp_path / "whole"
    assert screen(export.folder, whole, "--as-of", AS_OF, "--workers", "1") == 0
    job = Job(export.folder, tmp_path / "chunked", evaluation_time(AS_OF), 2, 0, 1000, chunk_bytes=20_000)
    assert len(chunks(list_inputs(export.folder)[3], job.chunk_bytes)) > 5  # Observation.000.ndjson
    run_local(job, LineProgress(io.StringIO(), 60))
    for name in ("results.ndjson", "fhir/RiskAssessment.ndjson", "input-problems.ndjson"):
        assert (tmp_path / "chunked" / name).read_bytes() == (whole / name).read_bytes(), name
    problems = read_ndjson(tmp_path / "chunked" / "input-problems.ndjson")
    assert sorted((p["file"], p["line"]) for p in problems) == sorted(export.bad)
