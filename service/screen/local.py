"""The local engine: spill every file (phase 1), assess every partition (phase 2), in ``--workers``
processes, then gather the partitions' outputs into OUTDIR.

Resumable: files already spilled and partitions already assessed (their ledgers in OUTDIR/.work) are not
done again. Processes are started with ``spawn`` (no inherited threads or locks); with one worker the
work runs in this process.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from multiprocessing.pool import AsyncResult
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from service.screen.inputs import list_inputs
from service.screen.job import Job, assessor_for
from service.screen.outputs import INPUT_PROBLEMS, PER_PATIENT
from service.screen.partitions import TALLY, assess_partition
from service.screen.progress import Progress
from service.screen.spill import Chunk, chunks, spill_chunk
from service.screen.summary import summary, write_summary
from service.screen.tally import InputTally, ResultTally


class Counters:
    """Progress counters shared with the pool's processes, set once in each by the pool initializer
    (synchronised values can only be inherited, not sent with a task)."""

    done: Synchronized[int] | None = None
    patients: Synchronized[int] | None = None
    listener: Callable[[], None] | None = None  # with one worker: refresh the display at each report

    @classmethod
    def install(cls, done: Synchronized[int], patients: Synchronized[int]) -> None:
        cls.done, cls.patients = done, patients

    @classmethod
    def install_in_worker(cls, done: Synchronized[int], patients: Synchronized[int]) -> None:
        """Ctrl-C is the parent's to handle: it stops the pool, and what is done stays done."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cls.install(done, patients)

    @classmethod
    def report(cls, done: int, patients: int = 0) -> None:
        assert cls.done is not None and cls.patients is not None
        with cls.done.get_lock():
            cls.done.value += done
        with cls.patients.get_lock():
            cls.patients.value += patients
        if cls.listener is not None:
            cls.listener()


def _spill_task(args: tuple[Chunk, Job]) -> None:
    chunk, job = args
    spill_chunk(chunk, job.work, job.partitions, Counters.report)


def _assess_task(args: tuple[int, Job]) -> None:
    partition, job = args
    assess_partition(assessor_for(job.max_entries), job.work, partition, job.when, Counters.report)


def run_local(job: Job, progress: Progress) -> dict[str, Any]:
    """Run (or continue) the job; returns the summary written to OUTDIR/summary.json."""
    started = time.monotonic()
    files = list_inputs(job.source)
    table = assessor_for(job.max_entries).table
    job = job.resume(files, f"{table.id} {table.version}")
    work = job.work
    pieces = [c for f in files for c in chunks(f, job.chunk_bytes)]
    to_spill = [c for c in pieces if not work.spilled(c.name).exists()]
    to_assess = [p for p in range(job.partitions) if not work.part(p).exists()]
    with _Runner(job.workers) as runner:
        progress.phase("reading", sum(c.end - c.start for c in to_spill), "bytes")
        runner.run(_spill_task, [(c, job) for c in to_spill], progress)
        resources = sum(piece.stat().st_size for p in to_assess for piece in work.pieces(p))
        progress.phase("assessing", resources, "bytes")
        runner.run(_assess_task, [(p, job) for p in to_assess], progress)
    progress.close()
    inputs, results = InputTally(), ResultTally()
    for chunk in pieces:
        inputs.add(InputTally.from_json(json.loads(work.spilled(chunk.name).read_text())["tally"]))
    for p in range(job.partitions):
        results.add(ResultTally.from_json(json.loads((work.part(p) / TALLY).read_text())))
    _gather(job, pieces)
    run = {
        "engine": "local",
        "workers": job.workers,
        "partitions": job.partitions,
        "evaluationTime": job.evaluation_time(),
        "seconds": round(time.monotonic() - started, 2),
    }
    data = summary(inputs, results, table, len(files), run)
    write_summary(job.out, data)
    shutil.rmtree(work.root)
    return data


def _gather(job: Job, pieces: list[Chunk]) -> None:
    """Concatenate the partitions' files (in partition order) and the problem reports (in file order)."""
    work = job.work
    for name in PER_PATIENT:
        _concatenate([work.part(p) / name for p in range(job.partitions)], job.out / name)
    _concatenate([work.problems(c.name) for c in pieces], job.out / INPUT_PROBLEMS)


def _concatenate(sources: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as out:
        for source in sources:
            with source.open("rb") as stream:
                shutil.copyfileobj(stream, out)
    tmp.replace(target)


class _Runner:
    """Runs tasks in a spawned pool (or inline for one worker) while feeding the progress display."""

    def __init__(self, workers: int):
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.done = self.context.Value("q", 0)
        self.patients = self.context.Value("q", 0)
        self.pool: Any = None

    def __enter__(self) -> _Runner:
        Counters.install(self.done, self.patients)
        if self.workers > 1:
            self.pool = self.context.Pool(
                self.workers, initializer=Counters.install_in_worker, initargs=(self.done, self.patients)
            )
        return self

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        if self.pool is not None:
            if kind is None:
                self.pool.close()
            else:  # interrupted or failed: stop the workers now; finished work stays in the ledgers
                self.pool.terminate()
            self.pool.join()

    def run(self, task: Callable[[Any], None], items: Sequence[Any], progress: Progress) -> None:
        seen = [0, 0]

        def show() -> None:
            done, patients = self.done.value, self.patients.value
            progress.advance(done - seen[0], patients - seen[1])
            seen[:] = [done, patients]

        self.done.value = self.patients.value = 0
        if self.pool is None:
            Counters.listener = show
            try:
                for item in items:
                    task(item)
            finally:
                Counters.listener = None
            return
        pending: AsyncResult[list[None]] = self.pool.map_async(task, items, chunksize=1)
        while not pending.ready():
            pending.wait(0.2)
            show()
        pending.get()  # re-raises a worker's exception
        show()
