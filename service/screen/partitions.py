"""Phase 2: one partition → its patients grouped, assessed and written, then marked done.

A partition holds a few thousand patients at most (the partition count follows the export's size), so
grouping it in memory is bounded. Patients are assessed in sorted order and each patient's resources in
export order (file, then line): the output is the same however the work was split.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from service.assess import Assessor
from service.screen.outputs import OutcomeWriter
from service.screen.patient import EvaluationTime, Outcome, screen_patient
from service.screen.records import COMPARED, load
from service.screen.tally import ResultTally
from service.screen.workdir import WorkDir, write_atomically

TALLY = "tally.json"
REPORT_EVERY = 200  # patients between progress reports

Located = tuple[int, int, bytes]  # file index, line number, the line


def screen_group(assessor: Assessor, patient: str, lines: Iterable[Located], when: EvaluationTime) -> Outcome:
    """One patient's lines (in any order) → the outcome; the engines differ only in how they group."""
    resources: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    for _, _, raw in sorted(lines, key=lambda located: located[:2]):
        resource = load(raw)
        (requests if resource.get("resourceType") == COMPARED else resources).append(resource)
    return screen_patient(assessor, patient, resources, requests, when)


def grouped(work: WorkDir, partition: int) -> Iterator[tuple[str, list[Located], int]]:
    """The partition's patients in sorted order, each with its lines and their size in the spill."""
    groups: dict[str, list[Located]] = defaultdict(list)
    sizes: dict[str, int] = defaultdict(int)
    for piece in work.pieces(partition):
        with piece.open("rb") as stream:
            for text in stream:
                who, file, line, raw = text.rstrip(b"\n").split(b"\t", 3)
                key = who.decode("utf-8")
                groups[key].append((int(file), int(line), raw))
                sizes[key] += len(text)
    for patient in sorted(groups):
        yield patient, groups.pop(patient), sizes.pop(patient)


def assess_partition(
    assessor: Assessor,
    work: WorkDir,
    partition: int,
    when: EvaluationTime,
    report: Callable[[int, int], None] | None = None,
) -> ResultTally:
    """Assess every patient of the partition into ``parts/pNNNN`` (renamed into place when complete);
    ``report(bytes, patients)`` is called every few hundred patients, for the progress display."""
    done = work.part(partition)
    tmp = done.with_name(done.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # an interrupted attempt
    tally = ResultTally()
    patients = size = 0  # since the last report
    with OutcomeWriter(tmp) as writer:
        for patient, lines, nbytes in grouped(work, partition):
            outcome = screen_group(assessor, patient, lines, when)
            writer.write(outcome)
            tally.count(outcome)
            patients, size = patients + 1, size + nbytes
            if report is not None and patients == REPORT_EVERY:
                report(size, patients)
                patients = size = 0
    write_atomically(tmp / TALLY, json.dumps(tally.to_json()).encode("utf-8"))
    tmp.replace(done)
    if report is not None:
        report(size, patients)
    return tally
