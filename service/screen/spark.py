"""The Spark engine: the same job on Apache Spark (pyspark), for exports beyond one machine.

The executors read the export's files (gzip files whole, large plain ones in the local engine's chunks)
with the local engine's reader and classifier (``spill.read_chunk``: the same line limits, line numbers
and problem lines), the resources are grouped by patient (``groupByKey``: Spark spills to disk as
needed), and each group is assessed inside the executors by ``screen_group``, the function the local
engine calls. The driver streams the outcomes back one partition at a time (``toLocalIterator``) and
writes OUTDIR exactly as the local engine does, so ``results.ndjson`` is the same line for line once
sorted, and checks the summary against it (``reconcile``) before it reports success.

Master: whatever ``spark-submit --master`` gave; else ``local[--workers]``, bound to 127.0.0.1 with the
web UI off. Not resumable itself: Spark retries failed tasks; an interrupted Spark run starts again
(with ``--force`` once it has written outputs). A patient over ``--max-patient-bytes`` is refused as in
the local engine, but Spark has grouped it first: the executors' memory is Spark's to bound.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

from service.errors import InvalidInput
from service.screen.inputs import InputFile
from service.screen.job import Job, assessor_for, default_partitions
from service.screen.measure_reports import SubjectReports, append_summary_report
from service.screen.outputs import INPUT_PROBLEMS, OutcomeWriter, problem_line
from service.screen.partitions import Located, screen_group, too_much
from service.screen.patient import EvaluationTime, Outcome
from service.screen.places import inputs_for
from service.screen.progress import Progress
from service.screen.reader import Limits
from service.screen.reconcile import reconcile
from service.screen.records import ASSESS, COMPARE, TOO_LARGE
from service.screen.spill import Chunk, chunks, over_limit, read_chunk, too_large
from service.screen.summary import summary, write_summary
from service.screen.tally import InputTally, ResultTally
from service.screen.workdir import LineFile

Record = tuple[str, Any]  # ("line", (patient, located)), ("problem", (file, line, kind, why)), ("tally", ...)


def _read(limits: Limits, chunk: Chunk) -> Iterator[Record]:
    """Runs in an executor: one chunk's resources by patient, its problem lines, then its counts (a gzip
    file was checked against the decompression limit first: ``_read_checked``)."""
    tally = InputTally()
    file = chunk.file
    for number, kind, line in read_chunk(chunk, limits, tally):
        if kind.kind in (ASSESS, COMPARE):
            yield "line", (kind.patient, (file.index, number, line))
        elif kind.problem is not None:
            yield "problem", (file.index, number, kind.kind, kind.problem)
    yield "tally", tally.to_json()


def _assess(
    max_entries: int, max_bytes: int, when: EvaluationTime, groups: Iterable[Any]
) -> Iterator[tuple[int, Outcome]]:
    """Runs in an executor: each patient's lines → (how many lines, outcome)."""
    assessor = assessor_for(max_entries)
    for patient, lines in groups:
        located: list[Located] = list(lines)
        size = sum(len(raw) + 1 for _, _, raw in located)  # as NDJSON, as the local engine counts it
        if size > max_bytes:
            yield len(located), too_much(patient, size, max_bytes)
        else:
            yield len(located), screen_group(assessor, patient, located, when)


def _read_checked(limits: Limits, chunk: Chunk) -> Iterator[Record]:
    """``_read``, after making sure a gzip file is within the limit: a task's output cannot be taken back."""
    error = over_limit(chunk, limits)
    if error is None:
        yield from _read(limits, chunk)
        return
    tally, problem = too_large(chunk, error)
    yield "problem", (chunk.file.index, error.line, TOO_LARGE, problem)
    yield "tally", tally.to_json()


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
    files = inputs_for(job.source, job.out, job.allowed, job.force)
    if job.work.root.exists():
        raise InvalidInput(
            f"{job.out} holds an unfinished run of the local engine: continue it with --engine local, "
            "or use --force to start again"
        )
    assessor = assessor_for(job.max_entries)
    partitions = job.partitions or default_partitions(files)
    pieces = [c for f in files for c in chunks(f, job.chunk_bytes)]
    spark = session(job)
    try:
        sc = spark.sparkContext
        master = sc.master
        records = (
            sc.parallelize(pieces, len(pieces))
            .flatMap(partial(_read_checked, job.limits))
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        progress.phase("reading", 0, "lines")
        inputs = _input(records, files, job)
        progress.advance(sum(inputs.lines.values()))
        grouped = (
            records.filter(lambda r: r[0] == "line")
            .map(lambda r: r[1])
            .groupByKey(partitions)
            .mapPartitions(partial(_assess, job.max_entries, job.max_patient_bytes, job.when))
        )
        results = ResultTally()
        progress.phase("assessing", inputs.lines[ASSESS] + inputs.lines[COMPARE], "resources")
        with OutcomeWriter(job.out, SubjectReports(assessor, job.when, job.subject_reports)) as writer:
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
    data = summary(inputs, results, assessor, len(files), run, job.subject_reports)
    append_summary_report(job.out, data, assessor)
    reconcile(job.out, data)
    write_summary(job.out, data)
    return data


def _input(records: Any, files: list[InputFile], job: Job) -> InputTally:
    """The counts, and OUTDIR/input-problems.ndjson sorted by file and line as the local engine writes it
    (problem lines are few, so they are sorted in the driver)."""
    tally = InputTally()
    problems = []
    for kind, value in records.filter(lambda r: r[0] != "line").collect():
        if kind == "problem":
            problems.append(value)
        else:
            tally.add(InputTally.from_json(value))
    job.out.mkdir(parents=True, exist_ok=True)
    out = LineFile(job.out / INPUT_PROBLEMS)
    for file, number, what, problem in sorted(problems):
        out.write(problem_line(files[file].name, number, what, problem))
    out.close()
    return tally
