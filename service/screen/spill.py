"""Phase 1: one export file (or one chunk of a large one) → its lines, spilled to disk by patient hash.

An external partition: memory stays bounded whatever the export's size, since a line is classified and
written out at once and only file buffers and one line (``reader.Limits``) are held. A patient's lines
from every file land in the same partition (CRC-32 of ``Patient/<id>``, stable across processes and
machines), so phase 2 can group a partition on its own. A large uncompressed file is cut at line starts
into chunks read in parallel (a quick count of newlines gives each chunk its first line number, so lines
are reported as in the file).
"""

from __future__ import annotations

import gzip
import json
import shutil
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from service.screen.inputs import InputFile
from service.screen.outputs import problem_line
from service.screen.reader import BLOCK, Limits, LineReader, TooLarge, TooLong
from service.screen.records import (
    ASSESS,
    BLANK,
    COMPARE,
    MALFORMED,
    TOO_LARGE,
    TOO_LONG,
    Line,
    classify,
)
from service.screen.tally import InputTally
from service.screen.workdir import Entry, LineFile, WorkDir, sync_folder, write_atomically

REPORT_EVERY = 1 << 20  # bytes read between progress reports
CHUNK_BYTES = 32 << 20  # an uncompressed file larger than this is read in chunks of about this size

Classified = tuple[int, Line, bytes]  # line number, what it is, the line (the problem's line for the rest)


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
        while block := stream.read(BLOCK):
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


def read_chunk(
    chunk: Chunk, limits: Limits, tally: InputTally, progress: Callable[[int], None] | None = None
) -> Iterator[Classified]:
    """Every line of the chunk that is not blank, classified, and counted in ``tally``; one engine-neutral
    reading for the local engine and Spark's executors alike. Raises TooLarge (nothing of the file is
    then used: the caller drops what it kept)."""
    file = chunk.file
    with file.path.open("rb") as raw:
        raw.seek(chunk.start)
        if file.gzipped:
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
            reader = LineReader(stream, 1, limits.max_line, decompressed=limits.max_decompressed)
        else:
            reader = LineReader(raw, chunk.first_line, limits.max_line, length=chunk.end - chunk.start)
        reported = chunk.start
        try:
            for number, text in reader:
                if isinstance(text, TooLong):
                    kind = Line(
                        TOO_LONG,
                        problem=f"line of {text.size:,} bytes, longer than {limits.max_line:,} "
                        "(--max-line-bytes): skipped",
                    )
                    line = b""
                else:
                    line = text.rstrip(b"\r")
                    kind = classify(line)
                tally.count(kind, file.name)
                yield number, kind, line
                if progress is not None and raw.tell() - reported >= REPORT_EVERY:
                    progress(raw.tell() - reported)
                    reported = raw.tell()
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz: what was read counts
            kind = Line(MALFORMED, problem=f"the file cannot be read past this line: {exc}")
            tally.count(kind, file.name)
            yield reader.number, kind, b""
        finally:
            tally.count(Line(BLANK), file.name, reader.blank)
        if progress is not None:
            progress(max(chunk.end - reported, 0))


def over_limit(chunk: Chunk, limits: Limits) -> TooLarge | None:
    """Whether a gzip file decompresses to more than the limit, found by decompressing it (for an engine
    that cannot take back what it has read, such as Spark)."""
    if not chunk.file.gzipped:
        return None
    try:
        with gzip.open(chunk.file.path, "rb") as stream:
            LineReader(stream, 1, limits.max_line, decompressed=limits.max_decompressed).skim()
    except TooLarge as error:
        return error
    except (OSError, EOFError, zlib.error):
        pass  # read_chunk reports it
    return None


def too_large(chunk: Chunk, error: TooLarge) -> tuple[InputTally, str]:
    """A file over the decompression limit is skipped whole: its one count, and the problem to report
    at ``error.line``."""
    tally = InputTally()
    problem = f"{error}: the file is skipped"
    tally.count(Line(TOO_LARGE, problem=problem), chunk.file.name)
    return tally, problem


def spill_chunk(
    chunk: Chunk, work: WorkDir, partitions: int, limits: Limits, report: Callable[[int], None] | None = None
) -> InputTally:
    """Spill one chunk; its ledger entry is written last, after its files are durable, so an interrupted
    chunk is read again whole."""
    folder = work.spill(chunk.name)
    shutil.rmtree(folder, ignore_errors=True)  # from an attempt that was interrupted, or damaged
    folder.mkdir(parents=True)
    file = chunk.file
    tally = InputTally()
    pieces: dict[int, LineFile] = {}
    problems = LineFile(work.problems(chunk.name))
    prefix = f"\t{file.index}\t".encode()
    try:
        for number, kind, line in read_chunk(chunk, limits, tally, report):
            if kind.kind in (ASSESS, COMPARE):
                assert kind.patient is not None
                p = partition_of(kind.patient, partitions)
                out = pieces.get(p)
                if out is None:
                    out = pieces[p] = LineFile(work.piece(p, chunk.name))
                out.write(kind.patient.encode("utf-8") + prefix + str(number).encode() + b"\t" + line + b"\n")
            elif kind.problem is not None:
                problems.write(problem_line(file.name, number, kind.kind, kind.problem))
    except TooLarge as error:
        for out in pieces.values():
            out.close()
            out.path.unlink()
        pieces.clear()
        problems.close()
        problems = LineFile(work.problems(chunk.name))
        tally, problem = too_large(chunk, error)
        problems.write(problem_line(file.name, error.line, TOO_LARGE, problem))
    written = {str(p): out.close().to_json() for p, out in sorted(pieces.items())}
    ledger = {
        "file": file.name,
        "chunk": chunk.number,
        "tally": tally.to_json(),
        "pieces": written,
        "problems": problems.close().to_json(),
    }
    sync_folder(folder)
    write_atomically(work.spilled(chunk.name), json.dumps(ledger).encode("utf-8"))
    return tally


@dataclass(frozen=True)
class Spilled:
    """A chunk's ledger, read back: its counts and what each of its files must be."""

    tally: InputTally
    pieces: dict[int, Entry]
    problems: Entry


def read_spilled(data: dict[str, object]) -> Spilled:
    """Raises ValueError (or KeyError, TypeError) for a ledger no run wrote: the chunk is read again."""
    pieces = data["pieces"]
    tally = data["tally"]
    if not isinstance(pieces, dict) or not isinstance(tally, dict):
        raise TypeError("pieces and tally must be objects")
    return Spilled(
        InputTally.from_json(tally),
        {int(p): Entry.from_json(e) for p, e in pieces.items()},
        Entry.from_json(data["problems"]),
    )
