"""Phase 1: one export file (or one chunk of a large one) → its lines, spilled to disk by patient hash.

An external partition: memory stays bounded whatever the export's size, since a line is classified and
written out at once and only file buffers are held. A patient's lines from every file land in the same
partition (CRC-32 of ``Patient/<id>``, stable across processes and machines), so phase 2 can group a
partition on its own. A large uncompressed file is cut at line starts into chunks read in parallel (a
quick count of newlines gives each chunk its first line number, so lines are reported as in the file).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from service.screen.inputs import InputFile
from service.screen.outputs import problem_line
from service.screen.records import ASSESS, COMPARE, MALFORMED, NO_PATIENT, classify
from service.screen.tally import InputTally
from service.screen.workdir import WorkDir, write_atomically

REPORT_EVERY = 1 << 20  # bytes read between progress reports
CHUNK_BYTES = 32 << 20  # an uncompressed file larger than this is read in chunks of about this size
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Chunk:
    """Lines starting in bytes [start, end) of ``file`` (a gzip file is one chunk, to its end)."""

    file: InputFile
    number: int
    start: int
    end: int
    first_line: int

    @property
    def name(self) -> str:
        return f"f{self.file.index:05d}-c{self.number:05d}"


def chunks(file: InputFile, size: int = CHUNK_BYTES) -> list[Chunk]:
    if file.gzipped or file.size <= size:
        return [Chunk(file, 0, 0, file.size, 1)]
    starts = [(0, 1)]  # (byte offset, line number) of each chunk's first line
    position = lines = 0
    target = size
    with file.path.open("rb") as stream:
        while block := stream.read(_BLOCK):
            while target < position + len(block):
                newline = block.find(b"\n", max(target - position, 0))
                if newline < 0:
                    break  # the line goes on in the next block
                starts.append((position + newline + 1, lines + block.count(b"\n", 0, newline + 1) + 1))
                target = position + newline + 1 + size
            lines += block.count(b"\n")
            position += len(block)
    starts = [s for s in starts if s[0] < file.size]
    ends = [offset for offset, _ in starts[1:]] + [file.size]
    return [
        Chunk(file, i, start, end, line)
        for i, ((start, line), end) in enumerate(zip(starts, ends, strict=True))
    ]


def partition_of(patient: str, partitions: int) -> int:
    return zlib.crc32(patient.encode("utf-8")) % partitions


def _lines(chunk: Chunk, raw: BinaryIO) -> Iterator[bytes]:
    if chunk.file.gzipped:
        yield from gzip.GzipFile(fileobj=raw, mode="rb")
        return
    raw.seek(chunk.start)
    position = chunk.start
    for text in raw:
        if position >= chunk.end:
            return
        position += len(text)
        yield text


def spill_chunk(
    chunk: Chunk, work: WorkDir, partitions: int, report: Callable[[int], None] | None = None
) -> InputTally:
    """Spill one chunk; its ledger entry is written last, so an interrupted chunk is read again whole."""
    for stale in work.stale_pieces(chunk.name):
        stale.unlink()  # from an attempt that was interrupted
    file = chunk.file
    tally = InputTally()
    pieces: dict[int, BinaryIO] = {}
    problems = work.problems(chunk.name)
    problems.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"\t{file.index}\t".encode()
    reported = chunk.start
    with file.path.open("rb") as raw, problems.open("wb") as problem_out:
        number = chunk.first_line - 1
        try:
            for number, text in enumerate(_lines(chunk, raw), start=chunk.first_line):
                line = text.rstrip(b"\r\n")
                kind = classify(line)
                tally.count(kind, file.name)
                if kind.kind in (ASSESS, COMPARE):
                    assert kind.patient is not None
                    p = partition_of(kind.patient, partitions)
                    out = pieces.get(p)
                    if out is None:
                        path = work.piece(p, chunk.name)
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
        report(max(chunk.end - reported, 0))
    ledger = {"file": file.name, "chunk": chunk.number, "tally": tally.to_json()}
    write_atomically(work.spilled(chunk.name), json.dumps(ledger).encode("utf-8"))
    return tally
