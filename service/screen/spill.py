"""Phase 1: one export file → its lines, spilled to disk by patient hash (an external partition).

Memory stays bounded whatever the export's size: a line is classified and written out at once; only
file buffers are held. A patient's lines from every file land in the same partition (CRC-32 of
``Patient/<id>``, stable across processes and machines), so phase 2 can group a partition on its own.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from typing import BinaryIO

from service.screen.inputs import InputFile
from service.screen.outputs import problem_line
from service.screen.records import ASSESS, COMPARE, MALFORMED, NO_PATIENT, classify
from service.screen.tally import InputTally
from service.screen.workdir import WorkDir, write_atomically

REPORT_EVERY = 1 << 20  # bytes read between progress reports


def partition_of(patient: str, partitions: int) -> int:
    return zlib.crc32(patient.encode("utf-8")) % partitions


def spill_file(
    file: InputFile, work: WorkDir, partitions: int, report: Callable[[int], None] | None = None
) -> InputTally:
    """Spill one file; its ledger entry is written last, so an interrupted file is read again whole."""
    for stale in (work.root / "spill").glob(f"p*/f{file.index:05d}.tsv"):
        stale.unlink()  # from an attempt that was interrupted
    tally = InputTally()
    pieces: dict[int, BinaryIO] = {}
    problems = work.problems(file.index)
    problems.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"\t{file.index}\t".encode()
    reported = 0
    with file.path.open("rb") as raw, problems.open("wb") as problem_out:
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if file.gzipped else raw  # type: ignore[assignment]
        number = 0
        try:
            for number, text in enumerate(stream, start=1):
                line = text.rstrip(b"\r\n")
                kind = classify(line)
                tally.count(kind, file.name)
                if kind.kind in (ASSESS, COMPARE):
                    assert kind.patient is not None
                    p = partition_of(kind.patient, partitions)
                    out = pieces.get(p)
                    if out is None:
                        path = work.piece(p, file.index)
                        path.parent.mkdir(parents=True, exist_ok=True)
                        out = pieces[p] = path.open("wb", buffering=1 << 15)
                    where = prefix + str(number).encode() + b"\t"
                    out.write(kind.patient.encode("utf-8") + where + line + b"\n")
                elif kind.kind in (MALFORMED, NO_PATIENT):
                    problem_out.write(problem_line(file.name, number, kind.kind, kind.problem or ""))
                if report is not None and raw.tell() - reported >= REPORT_EVERY:
                    report(raw.tell() - reported)
                    reported = raw.tell()
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz: what was read counts
            tally.malformed[file.name] += 1
            tally.lines[MALFORMED] += 1
            problem = f"the file cannot be read past this line: {exc}"
            problem_out.write(problem_line(file.name, number + 1, MALFORMED, problem))
        for out in pieces.values():
            out.close()
    if report is not None:
        report(file.size - reported)
    ledger = {"file": file.name, "tally": tally.to_json()}
    write_atomically(work.spilled(file.index), json.dumps(ledger).encode("utf-8"))
    return tally
