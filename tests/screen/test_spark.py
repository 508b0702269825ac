"""The Spark engine (pyspark, local mode) gives the local engine's outputs, line for line once sorted.

Spark 4 runs on Java 17 or later: a machine without one gets Debian's openjdk-17-jre-headless.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.bulk_export import Export, write_export
from tests.debian import apt_install
from tests.screen.support import AS_OF, screen, sorted_lines

ROOT = Path(__file__).resolve().parents[2]
COMPARED = (
    "results.ndjson",
    "fhir/RiskAssessment.ndjson",
    "fhir/ServiceRequest.ndjson",
    "not-assessed.ndjson",
    "escalation-without-referral.ndjson",
    "fhir/MeasureReport.ndjson",
)
RUN_ONLY = ("engine", "master", "workers", "partitions", "seconds")


def java_major() -> int:
    if shutil.which("java") is None:
        return 0
    done = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)', done.stderr)
    return int(found.group(1)) if found else 0


@pytest.fixture(scope="module")
def java() -> None:
    if java_major() < 17:
        apt_install("openjdk-17-jre-headless")
    assert java_major() >= 17, "apt-get installed openjdk-17-jre-headless but java 17 is not on PATH"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """gzip, split files, malformed lines, unrelated types: everything the engines must agree on."""
    return write_export(tmp_path_factory.mktemp("export"), 250, seed=9, gz=True, file_lines=400, bad_lines=4)


@pytest.fixture(scope="module")
def local(export: Export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "2") == 0
    return out


def run_spark(command: list[str]) -> None:
    """Executors in this Python; the driver on loopback (SPARK_LOCAL_IP)."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]


def same_outputs(spark: Path, local: Path) -> None:
    for name in COMPARED:
        assert sorted_lines(spark / name) == sorted_lines(local / name), name
    assert (spark / "input-problems.ndjson").read_bytes() == (local / "input-problems.ndjson").read_bytes()

    def shared(path: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(path.read_text())
        return {k: v for k, v in data.items() if k not in RUN_ONLY}

    assert shared(spark / "summary.json") == shared(local / "summary.json")
    assert (spark / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_spark_engine_gives_the_local_engines_results(
    java: None, export: Export, local: Path, tmp_path: Path
) -> None:
    out = tmp_path / "spark"
    command = [sys.executable, "-m", "service.cli", "screen", str(export.folder), "--out", str(out)]
    run_spark([*command, "--engine", "spark", "--workers", "2", "--as-of", AS_OF])
    same_outputs(out, local)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "spark" and summary["master"] == "local[2]"
    assert len(sorted_lines(out / "results.ndjson")) > 150


def test_the_readme_spark_submit_command(java: None, export: Export, local: Path, tmp_path: Path) -> None:
    """docs/screening.md, "On Apache Spark": spark-submit with the job file, here with master local[2]."""
    out = tmp_path / "submitted"
    job = ROOT / "service" / "spark_job.py"
    submit = Path(sys.executable).parent / "spark-submit"
    loopback = ["--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.driver.host=127.0.0.1"]
    options = ["--master", "local[2]", *loopback, "--conf", "spark.ui.enabled=false"]
    run_spark([str(submit), *options, str(job), str(export.manifest), "--out", str(out), "--as-of", AS_OF])
    same_outputs(out, local)


def test_spark_engine_refuses_what_the_local_engine_refuses_before_starting_spark(
    export: Export, tmp_path: Path
) -> None:
    def refused(source: Path, out: Path) -> str:
        command = [sys.executable, "-m", "service.cli", "screen", str(source), "--out", str(out)]
        command += ["--engine", "spark", "--as-of", AS_OF]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 2, done.stderr
        return done.stderr

    assert "inside the export" in refused(export.folder, export.folder / "screen")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"output": [{"type": "Patient", "url": "file:///etc/passwd"}]}))
    assert "outside the manifest's folder" in refused(manifest, tmp_path / "out")


def test_spark_engine_applies_the_line_and_file_limits_as_the_local_engine_does(
    java: None, export: Export, tmp_path: Path
) -> None:
    """An over-long line (plain and gzip), a gzip file over the decompression limit (the byte past it is
    in line 4), patients over the byte limit: the same problem lines, refusals, counts and results from
    both engines."""
    folder = tmp_path / "export"
    shutil.copytree(export.folder, folder)
    bomb = b'{"resourceType": "Patient", "id": "p"}\n' + b"0" * (300 << 10) + b"\n"
    (folder / "Basic.ndjson.gz").write_bytes(gzip.compress(bomb * 2))
    (folder / "Long.ndjson").write_bytes(b"[]\n" + b" " * (100 << 10) + b"1\n{}\n")
    limits = ["--max-line-bytes", "64K", "--max-decompressed-bytes", "500K", "--max-patient-bytes", "3K"]
    limits += ["--as-of", AS_OF, "--subject-reports"]
    assert screen(folder, tmp_path / "local", "--workers", "2", *limits) == 0
    command = [sys.executable, "-m", "service.cli", "screen", str(folder), "--out", str(tmp_path / "spark")]
    run_spark([*command, "--engine", "spark", "--workers", "2", *limits])
    same_outputs(tmp_path / "spark", tmp_path / "local")
    problems = (tmp_path / "spark" / "input-problems.ndjson").read_text()
    assert '"file": "Basic.ndjson.gz", "line": 4, "kind": "too-large"' in problems
    assert '"file": "Long.ndjson", "line": 2, "kind": "too-long"' in problems
    refused = (tmp_path / "spark" / "not-assessed.ndjson").read_text()
    assert refused.count("(--max-patient-bytes)") > 5
    reports = (tmp_path / "spark" / "fhir" / "MeasureReport.ndjson").read_text()
    assert reports.count('"type":"individual"') > 0 and reports.count('"type":"summary"') == 1
