"""Phase 2: one partition → its patients grouped, assessed and written, then marked done.

Patients are assessed in sorted order and each patient's resources in export order (file, then line):
the output is the same however the work was split. Memory is bounded whatever the export holds: a
partition larger than ``BATCH_BYTES`` is grouped a batch of patients at a time (one more pass over its
pieces per batch), and a patient with more than ``max_patient_bytes`` of resources is refused unread
(not-assessed.ndjson, status 413, as ``$assess`` refuses a body over its limit). Every piece is checked
against its ledger entry while it is read: a damaged piece stops the partition before anything is
written (``workdir.Damaged``).
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.assess import Assessor
from service.screen.measure_reports import SubjectReports
from service.screen.outputs import OutcomeWriter
from service.screen.patient import EvaluationTime, Outcome, screen_patient
from service.screen.records import COMPARED, load
from service.screen.tally import ResultTally
from service.screen.workdir import (
    Damaged,
    Entry,
    WorkDir,
    checked_lines,
    read_ledger,
    sync_folder,
    write_atomically,
)

TALLY = "tally.json"
REPORT_EVERY = 200  # patients between progress reports
BATCH_BYTES = 64 << 20  # of spilled lines grouped in memory at once
MAX_PATIENT_BYTES = 64 << 20  # assessing a patient takes about 10 times its NDJSON in memory

Located = tuple[int, int, bytes]  # file index, line number, the line
Piece = tuple[Path, Entry]
Part = tuple[ResultTally, dict[str, Entry]]  # a finished partition's counts, and what its outputs hold


@dataclass(frozen=True)
class Task:
    """One partition to assess: its pieces as the ledgers record them, and the limits."""

    partition: int
    pieces: list[Piece]
    when: EvaluationTime
    max_patient_bytes: int = MAX_PATIENT_BYTES
    subject_reports: bool = False  # an individual MeasureReport for each patient of the denominator


def screen_group(assessor: Assessor, patient: str, lines: Iterable[Located], when: EvaluationTime) -> Outcome:
    """One patient's lines (in any order) → the outcome; the engines differ only in how they group."""
    resources: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    for _, _, raw in sorted(lines, key=lambda located: located[:2]):
        resource = load(raw)
        (requests if resource.get("resourceType") == COMPARED else resources).append(resource)
    return screen_patient(assessor, patient, resources, requests, when)


def too_much(patient: str, size: int, limit: int) -> Outcome:
    """A patient whose resources are over the limit, refused without reading them."""
    problem = f"{size:,} bytes of resources, more than {limit:,} (--max-patient-bytes)"
    return Outcome(patient, error={"patient": patient, "status": 413, "problems": [problem]})


def _lines(pieces: list[Piece]) -> Iterator[tuple[str, bytes, int]]:
    """(patient, spilled line, the size of its resource as an NDJSON line) of every piece, each checked
    against its ledger entry (every pass: a SHA-256 costs less than a tenth of reading the lines)."""
    for path, entry in pieces:
        for text in checked_lines(path, entry):
            who = text.index(b"\t")
            resource = text.index(b"\t", text.index(b"\t", who + 1) + 1) + 1
            yield text[:who].decode("utf-8"), text, len(text) - resource


def grouped(task: Task) -> Iterator[tuple[str, list[Located] | None, int, int]]:
    """The partition's patients in sorted order, each with its lines (None when over the limit), their
    size as NDJSON (what the limit is about) and in the spill (what the progress display counts)."""
    if sum(entry.size for _, entry in task.pieces) <= BATCH_BYTES:
        yield from _group(task, None)
        return
    sizes: dict[str, int] = defaultdict(int)
    spilled: dict[str, int] = defaultdict(int)
    for patient, text, size in _lines(task.pieces):  # a first pass for the sizes
        sizes[patient] += size
        spilled[patient] += len(text)
    for batch in _batches(sizes, task.max_patient_bytes):
        if isinstance(batch, str):
            yield batch, None, sizes[batch], spilled[batch]
        else:
            yield from _group(task, batch)


def _group(task: Task, batch: set[str] | None) -> Iterator[tuple[str, list[Located] | None, int, int]]:
    """One pass over the pieces grouping the patients of ``batch`` (all when None)."""
    groups: dict[str, list[Located] | None] = {}
    sizes: dict[str, int] = defaultdict(int)
    spilled: dict[str, int] = defaultdict(int)
    for patient, text, size in _lines(task.pieces):
        if batch is not None and patient not in batch:
            continue
        sizes[patient] += size
        spilled[patient] += len(text)
        lines = groups.get(patient, [])
        if lines is None:
            continue
        if sizes[patient] > task.max_patient_bytes:
            groups[patient] = None  # refused: its lines are let go
            continue
        if not lines:
            groups[patient] = lines
        _, file, line, raw = text.rstrip(b"\n").split(b"\t", 3)
        lines.append((int(file), int(line), raw))
    for patient in sorted(groups):
        yield patient, groups.pop(patient), sizes[patient], spilled[patient]


def _batches(sizes: dict[str, int], limit: int) -> Iterator[set[str] | str]:
    """Patients in sorted order cut into sets of at most BATCH_BYTES (a larger patient alone); a
    patient over the limit comes as its name, in its place."""
    batch: set[str] = set()
    total = 0
    for patient in sorted(sizes):
        size = sizes[patient]
        if batch and (size > limit or total + size > BATCH_BYTES):
            yield batch
            batch, total = set(), 0
        if size > limit:
            yield patient
            continue
        batch.add(patient)
        total += size
    if batch:
        yield batch


def assess_partition(
    assessor: Assessor, work: WorkDir, task: Task, report: Callable[[int, int], None] | None = None
) -> ResultTally:
    """Assess every patient of the partition into ``parts/pNNNN`` (renamed into place when complete, with
    its ledger ``tally.json`` written last); ``report(bytes, patients)`` is called every few hundred
    patients, for the progress display."""
    done = work.part(task.partition)
    tmp = done.with_name(done.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # an interrupted attempt
    tally = ResultTally()
    patients = size = 0  # since the last report
    with OutcomeWriter(tmp, SubjectReports(assessor, task.when, task.subject_reports)) as writer:
        for patient, lines, ndjson, nbytes in grouped(task):
            if lines is None:
                outcome = too_much(patient, ndjson, task.max_patient_bytes)
            else:
                outcome = screen_group(assessor, patient, lines, task.when)
            writer.write(outcome)
            tally.count(outcome)
            patients, size = patients + 1, size + nbytes
            if report is not None and patients == REPORT_EVERY:
                report(size, patients)
                patients = size = 0
    files = {name: entry.to_json() for name, entry in writer.entries.items()}
    write_atomically(tmp / TALLY, json.dumps({"tally": tally.to_json(), "files": files}).encode("utf-8"))
    tmp.replace(done)
    sync_folder(done.parent)
    if report is not None:
        report(size, patients)
    return tally


def read_part(work: WorkDir, partition: int) -> Part:
    """A finished partition's counts and what each of its outputs must be; raises Damaged."""
    path = work.part(partition) / TALLY
    data = read_ledger(path)
    try:
        files = data["files"]
        if not isinstance(files, dict) or not isinstance(data["tally"], dict):
            raise TypeError("files and tally must be objects")
        return ResultTally.from_json(data["tally"]), {name: Entry.from_json(e) for name, e in files.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise Damaged(path, f"not a partition's ledger ({exc!r})") from exc
