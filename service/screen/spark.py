"""The Spark engine: the same job on Apache Spark (pyspark), for exports beyond one machine.

Spark reads the NDJSON files (``.gz`` too) and numbers their lines, each line is classified by the same
code as the local engine (``records.classify``), the resources are grouped by patient (``groupByKey``:
Spark spills to disk as needed), and each group is assessed inside the executors by ``screen_group``,
the function the local engine calls. The driver streams the outcomes back one partition at a time
(``toLocalIterator``) and writes OUTDIR exactly as the local engine does, so ``results.ndjson`` is the
same line for line once sorted.

Master: whatever ``spark-submit --master`` gave; else ``local[--workers]``, bound to 127.0.0.1 with the
web UI off. Not resumable itself: Spark retries failed tasks; an interrupted Spark run starts again.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

from service.screen.inputs import InputFile, list_inputs
from service.screen.job import Job, assessor_for, default_partitions
from service.screen.outputs import INPUT_PROBLEMS, OutcomeWriter, problem_line
from service.screen.partitions import Located, screen_group
from service.screen.patient import EvaluationTime, Outcome
from service.screen.progress import Progress
from service.screen.records import ASSESS, COMPARE, MALFORMED, NO_PATIENT, Line, classify
from service.screen.summary import summary, write_summary
from service.screen.tally import InputTally, ResultTally

Classified = tuple[int, int, Line, bytes]  # file index, line number, what it is, the line


def _classified(file: int, numbered: tuple[bytes, int]) -> Classified:
    raw, index = numbered
    raw = raw.rstrip(b"\r")
    return file, index + 1, classify(raw), raw


def _assess(max_entries: int, when: EvaluationTime, groups: Iterable[Any]) -> Iterator[tuple[int, Outcome]]:
    """Runs in an executor: each patient's lines → (how many lines, outcome)."""
    assessor = assessor_for(max_entries)
    for patient, lines in groups:
        located: list[Located] = list(lines)
        yield len(located), screen_group(assessor, patient, located, when)


def session(job: Job) -> Any:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this same Python
    builder = SparkSession.builder.appName("neckcheck-screen").config("spark.ui.showConsoleProgress", "false")
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not started by spark-submit: one machine, loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (
            builder.master(f"local[{job.workers}]")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.ui.enabled", "false")
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def run_spark(job: Job, progress: Progress) -> dict[str, Any]:
    from pyspark import StorageLevel

    started = time.monotonic()
    files = list_inputs(job.source)
    table = assessor_for(job.max_entries).table
    partitions = job.partitions or default_partitions(files)
    spark = session(job)
    try:
        sc = spark.sparkContext
        master = sc.master
        lines = sc.union(
            [
                sc.textFile(str(f.path), use_unicode=False).zipWithIndex().map(partial(_classified, f.index))
                for f in files
            ]
        ).persist(StorageLevel.MEMORY_AND_DISK)
        progress.phase("reading", 0, "lines")
        inputs = _read(lines, files, job)
        progress.advance(sum(inputs.lines.values()))
        grouped = (
            lines.filter(lambda c: c[2].kind in (ASSESS, COMPARE))
            .map(lambda c: (c[2].patient, (c[0], c[1], c[3])))
            .groupByKey(partitions)
            .mapPartitions(partial(_assess, job.max_entries, job.when))
        )
        results = ResultTally()
        progress.phase("assessing", inputs.lines[ASSESS] + inputs.lines[COMPARE], "resources")
        with OutcomeWriter(job.out) as writer:
            for count, outcome in grouped.toLocalIterator():
                writer.write(outcome)
                results.count(outcome)
                progress.advance(count, 1)
        progress.close()
    finally:
        spark.stop()
    run = {
        "engine": "spark",
        "master": master,
        "partitions": partitions,
        "evaluationTime": job.evaluation_time(),
        "seconds": round(time.monotonic() - started, 2),
    }
    data = summary(inputs, results, table, len(files), run)
    write_summary(job.out, data)
    return data


def _tally(numbered: Iterable[Classified]) -> Iterator[tuple[str, Any]]:
    """Runs in an executor: the partition's counts by (file, kind, type), and its problem lines."""
    counts: Counter[tuple[int, str, str | None]] = Counter()
    for file, number, line, _ in numbered:
        counts[(file, line.kind, line.resource_type)] += 1
        if line.kind in (MALFORMED, NO_PATIENT):
            yield "problem", (file, number, line.kind, line.problem or "")
    yield "counts", counts


def _read(lines: Any, files: list[InputFile], job: Job) -> InputTally:
    """One pass over the export for the counts and OUTDIR/input-problems.ndjson (sorted by file and line,
    as the local engine writes it; problem lines are few, so they are sorted in the driver)."""
    tally = InputTally()
    problems = []
    for kind, value in lines.mapPartitions(_tally).collect():
        if kind == "problem":
            problems.append(value)
            continue
        for (file, what, rtype), n in value.items():
            tally.count(Line(what, rtype), files[file].name, n)
    job.out.mkdir(parents=True, exist_ok=True)
    with (job.out / INPUT_PROBLEMS).open("wb") as out:
        for file, number, what, problem in sorted(problems):
            out.write(problem_line(files[file].name, number, what, problem))
    return tally
