"""Population screening benchmark (issue 13): throughput and memory of ``neckcheck screen``.

    .venv/bin/python -m benchmarks.screen [--quick] [--out FILE]

Writes synthetic exports (benchmarks/bulk_export.py) of 10,000 and 100,000 patients (``--quick``: 1,000
and 10,000), screens each with the local engine (2 workers, as the 2-core reference machine has), and
measures wall time (patients/s), CPU time (patients per CPU-second, times two: what two idle
cores would give on a shared machine) and memory: the peak RSS of each process of the run (the parent, and
each worker) from the kernel's high-water mark, and the peak of their sum, sampled every 50 ms. Then
the Spark engine (local[2]) on the smaller export, its time beside the local engine's and its
results.ndjson compared with the local one after sorting; and a sample of 1,000 patients assessed
directly with ``Assessor.run`` on a Bundle grouped here, compared with results.ndjson.
Prints one JSON object (also written to ``--out``); the exit status is 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.bulk_export import AS_OF, write_export

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"patients_per_s": 2000, "peak_rss_mb_100k": 300, "rss_growth_10k_to_100k": 1.5}


def _rss_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> list[int]:
    """The process and its descendants, from /proc/<pid>/task/<tid>/children."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def screen(source: Path, out: Path, *args: str) -> dict[str, Any]:
    """Run ``neckcheck screen`` as a subprocess, sampling the memory of its process tree."""
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "screen",
        str(source),
        "--out",
        str(out),
        "--as-of",
        AS_OF,
    ]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.Popen(
        [*command, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    peak_sum, peaks = 0, {}
    while run.poll() is None:
        pids = _tree(run.pid)
        peak_sum = max(peak_sum, sum(_rss_kb(p, "VmRSS") for p in pids))
        for pid in pids:
            peaks[pid] = max(peaks.get(pid, 0), _rss_kb(pid, "VmHWM"))
        time.sleep(0.05)
    _, err = run.communicate()
    seconds = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run and its workers, all waited for
    cpu_seconds = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    if run.returncode != 0:
        return {"error": err.decode()[-2000:]}
    summary = json.loads((out / "summary.json").read_text())
    patients = sum(summary["patients"][k] for k in ("withResult", "noFacts", "notAssessed"))
    python_peaks = [kb for pid, kb in peaks.items() if kb]
    return {
        "patients": patients,
        "resources": sum(summary["input"]["lines"].values()),
        "seconds": round(seconds, 2),
        "patients_per_s": round(patients / seconds),
        # Python processes only (Spark's JVM is not among the children waited for): what two idle cores
        # would give, as the machine is shared and wall time depends on the others' load
        **({} if "spark" in args else {"cpu_seconds": round(cpu_seconds, 2)}),
        **({} if "spark" in args else {"patients_per_cpu_s_x2": round(2 * patients / cpu_seconds)}),
        "peak_rss_mb_largest_process": round(max(python_peaks, default=0) / 1024, 1),
        "peak_rss_mb_all_processes": round(peak_sum / 1024, 1),
    }


def sample_against_assess(export: Path, out: Path, n: int = 1000) -> dict[str, Any]:
    """``Assessor.run`` on n patients' Bundles grouped here vs their lines in results.ndjson."""
    from service.assess import Assessor
    from service.fhir_values import parse_datetime
    from service.screen.patient import results_line

    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(export.glob("*.ndjson")):
        for text in path.read_text().splitlines():
            resource = json.loads(text)
            kind = resource["resourceType"]
            if kind == "Patient":
                groups[f"Patient/{resource['id']}"].append(resource)
            elif kind in ("Observation", "QuestionnaireResponse", "Encounter"):
                groups[resource["subject"]["reference"]].append(resource)
    lines = {json.loads(t)["patient"]: t for t in (out / "results.ndjson").read_text().splitlines()}
    assessor, as_of = Assessor.load(), parse_datetime(AS_OF, "asOf")
    differ = compared = 0
    for patient in random.Random(1).sample(sorted(lines), min(n, len(lines))):
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in groups[patient]],
        }
        compared += 1
        differ += results_line(patient, assessor.run(bundle, as_of=as_of)) != lines[patient]
    return {"compared": compared, "different": differ}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 patients")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    small, large = (1_000, 10_000) if args.quick else (10_000, 100_000)
    report: dict[str, Any] = {"targets": TARGETS, "load_average_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="neckcheck-bench-screen-") as tmp:
        base = Path(tmp)
        for size in (small, large):
            export = write_export(base / f"export-{size}", size, seed=1)  # one file per type
            report[f"local_{size}"] = screen(export.folder, base / f"out-{size}", "--workers", "2")
            if size == small:
                report["sample_vs_assess"] = sample_against_assess(export.folder, base / f"out-{size}")
                spark = screen(export.folder, base / "spark", "--engine", "spark", "--workers", "2")
                if "error" not in spark:
                    mine = sorted((base / f"out-{size}" / "results.ndjson").read_text().splitlines())
                    theirs = sorted((base / "spark" / "results.ndjson").read_text().splitlines())
                    spark["identical_results"] = mine == theirs
                report[f"spark_local2_{size}"] = spark
                shutil.rmtree(base / "spark", ignore_errors=True)
            shutil.rmtree(export.folder)
    one, two = report[f"local_{small}"], report[f"local_{large}"]
    if "error" not in one and "error" not in two:
        report["rss_growth_largest_process"] = round(
            two["peak_rss_mb_largest_process"] / one["peak_rss_mb_largest_process"], 2
        )
        report["rss_growth_all_processes"] = round(
            two["peak_rss_mb_all_processes"] / one["peak_rss_mb_all_processes"], 2
        )
    report["load_average_end"] = os.getloadavg()
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return report


if __name__ == "__main__":
    main()
