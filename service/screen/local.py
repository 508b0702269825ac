"""The local engine: spill every file (phase 1), assess every partition (phase 2), in ``--workers``
processes, then gather the partitions' outputs into OUTDIR.

Resumable: files already spilled and partitions already assessed (their ledgers in OUTDIR/.work) are not
done again, once every file their ledgers name has been read back and found as recorded; what is not is
said (``note``) and done again. A damaged file found during the run stops it (``workdir.Damaged``) with
its ledger withdrawn, so the same command redoes it. Before the run says it finished, the summary is
recounted from the outputs (``reconcile``). Processes are started with ``spawn`` (no inherited threads
or locks); with one worker the work runs in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from multiprocessing.pool import AsyncResult
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from service.screen.job import Job, assessor_for
from service.screen.measure_reports import append_summary_report
from service.screen.outputs import INPUT_PROBLEMS, PER_PATIENT
from service.screen.partitions import Part, Task, assess_partition, read_part
from service.screen.places import inputs_for
from service.screen.progress import Progress
from service.screen.reconcile import reconcile
from service.screen.spill import Chunk, Spilled, chunks, read_spilled, spill_chunk
from service.screen.summary import summary, write_summary
from service.screen.tally import InputTally, ResultTally
from service.screen.workdir import Checksum, Damaged, Entry, WorkDir, read_ledger, sync_folder, verify


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
    spill_chunk(chunk, job.work, job.partitions, job.limits, Counters.report)


def _assess_task(args: tuple[Task, Job]) -> None:
    task, job = args
    assess_partition(assessor_for(job.max_entries), job.work, task, Counters.report)


def _quiet(message: str) -> None:
    """The default for ``note``: nothing said."""


def run_local(job: Job, progress: Progress, note: Callable[[str], None] = _quiet) -> dict[str, Any]:
    """Run (or continue) the job; returns the summary written to OUTDIR/summary.json. ``note`` is told of
    each damaged file found in the work folder and done again."""
    started = time.monotonic()
    files = inputs_for(job.source, job.out, job.allowed, job.force)
    table = assessor_for(job.max_entries).table
    job = job.resume(files, f"{table.id} {table.version}")
    work = job.work
    pieces = [c for f in files for c in chunks(f, job.chunk_bytes)]
    parts = _finished_parts(work, job.partitions, note)
    to_assess = [p for p in range(job.partitions) if p not in parts]
    spilled = _spilled(work, pieces, set(to_assess), note)
    to_spill = [c for c in pieces if c.name not in spilled]
    with _Runner(job.workers) as runner:
        progress.phase("reading", sum(c.end - c.start for c in to_spill), "bytes")
        runner.run(_spill_task, [(c, job) for c in to_spill], progress)
        for chunk in to_spill:
            spilled[chunk.name] = read_spilled(read_ledger(work.spilled(chunk.name)))
        tasks = [_task(job, p, pieces, spilled) for p in to_assess]
        progress.phase("assessing", sum(e.size for t in tasks for _, e in t.pieces), "bytes")
        try:
            runner.run(_assess_task, [(t, job) for t in tasks], progress)
        except Damaged as damaged:
            _withdraw(work, damaged.path)
            raise
    progress.close()
    for p in to_assess:
        parts[p] = read_part(work, p)
    inputs, results = InputTally(), ResultTally()
    for chunk in pieces:
        inputs.add(spilled[chunk.name].tally)
    for p in range(job.partitions):
        results.add(parts[p][0])
    _gather(job, pieces, parts, spilled)
    run = {
        "engine": "local",
        "workers": job.workers,
        "partitions": job.partitions,
        "evaluationTime": job.evaluation_time(),
        "seconds": round(time.monotonic() - started, 2),
    }
    assessor = assessor_for(job.max_entries)
    data = summary(inputs, results, assessor, len(files), run, job.subject_reports)
    append_summary_report(job.out, data, assessor)
    reconcile(job.out, data)
    write_summary(job.out, data)
    work.remove()
    return data


def _task(job: Job, partition: int, pieces: list[Chunk], spilled: dict[str, Spilled]) -> Task:
    """A partition's pieces, in export order, with what their ledgers say they hold."""
    found = [(job.work.piece(partition, c.name), spilled[c.name].pieces.get(partition)) for c in pieces]
    located = [(path, e) for path, e in found if e is not None]
    return Task(partition, located, job.when, job.max_patient_bytes, job.subject_reports)


def _finished_parts(work: WorkDir, partitions: int, note: Callable[[str], None]) -> dict[int, Part]:
    """The partitions assessed by an earlier attempt whose outputs are as their ledger says; the others
    are removed, to be assessed again."""
    found: dict[int, Part] = {}
    for p in range(partitions):
        if not work.part(p).exists():
            continue
        try:
            tally, entries = read_part(work, p)
            for name, entry in entries.items():
                verify(work.part(p) / name, entry)
        except Damaged as damaged:
            note(f"{damaged}; partition {p} is assessed again")
            shutil.rmtree(work.part(p))
            continue
        found[p] = (tally, entries)
    return found


def _spilled(
    work: WorkDir, pieces: list[Chunk], needed: set[int], note: Callable[[str], None]
) -> dict[str, Spilled]:
    """The chunks spilled by an earlier attempt whose problems and pieces for the partitions still to
    assess are as their ledger says; the others are read again from the input."""
    found: dict[str, Spilled] = {}
    for chunk in pieces:
        ledger = work.spilled(chunk.name)
        if not ledger.exists():
            continue
        try:
            try:
                done = read_spilled(read_ledger(ledger))
            except (KeyError, TypeError, ValueError) as exc:
                raise Damaged(ledger, f"not a chunk's ledger ({exc!r})") from exc
            verify(work.problems(chunk.name), done.problems)
            for p, entry in done.pieces.items():
                if p in needed:
                    verify(work.piece(p, chunk.name), entry)
        except Damaged as damaged:
            note(f"{damaged}; {chunk.file.name} is read again from the input")
            ledger.unlink()
            continue
        found[chunk.name] = done
    return found


def _withdraw(work: WorkDir, path: Path) -> None:
    """A spill piece found damaged during the run: its chunk's ledger is withdrawn, so the next run reads
    the chunk again (its partition, not written, is assessed then)."""
    if path.is_relative_to(work.root / "spill"):
        work.spilled(path.parent.name).unlink(missing_ok=True)


def _gather(job: Job, pieces: list[Chunk], parts: dict[int, Part], spilled: dict[str, Spilled]) -> None:
    """Concatenate the partitions' files (in partition order) and the problem reports (in file order),
    each checked against its ledger as it is copied."""
    work = job.work
    for name in PER_PATIENT:
        sources = [(work.part(p) / name, parts[p][1][name]) for p in range(job.partitions)]
        _concatenate(work, sources, job.out / name)
    problems = [(work.problems(c.name), spilled[c.name].problems) for c in pieces]
    _concatenate(work, problems, job.out / INPUT_PROBLEMS)


def _concatenate(work: WorkDir, sources: list[tuple[Path, Entry]], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as out:
        for source, entry in sources:
            seen = Checksum()
            with source.open("rb") as stream:
                while block := stream.read(1 << 20):
                    seen.add(block)
                    out.write(block)
            try:
                seen.check(source, entry)
            except Damaged:
                tmp.unlink()
                _remove(work, source)
                raise
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(target)
    sync_folder(target.parent)


def _remove(work: WorkDir, path: Path) -> None:
    """A damaged file found while gathering: its partition, or its chunk, is done again by the next run."""
    parts = work.root / "parts"
    if path.is_relative_to(parts):
        shutil.rmtree(parts / path.relative_to(parts).parts[0])
    else:
        _withdraw(work, path)


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
            if not done and not patients:
                return  # nothing to say yet (a first line with no rate and no ETA)
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
