"""An export file's lines, read in fixed blocks so that no input can make a process hold more than a line.

``readline`` (and iterating a file) holds a whole line however long it is: one 2 GB line of a small gzip
file took 4.5 GB of memory. Here a line is gathered only up to ``max_line`` bytes; past that its bytes are
counted and dropped until its newline, and the line is reported by number and length instead. A gzip
file stops being read once it has given ``max_decompressed`` bytes (a decompression bomb is reported,
not followed). Runs of empty lines are counted a block at a time, so a file of newlines costs what
decompressing it costs, not a Python step per line.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK = 1 << 20
MAX_LINE = 16 << 20  # a FHIR resource larger than this is not a patient's record but a mistake or an attack
MAX_DECOMPRESSED = 64 << 30  # a .gz giving more than this is taken for a decompression bomb
_NEWLINES = re.compile(rb"\n+")


@dataclass(frozen=True)
class Limits:
    max_line: int = MAX_LINE
    max_decompressed: int = MAX_DECOMPRESSED


@dataclass(frozen=True)
class TooLong:
    """A line longer than the limit, skipped: how many bytes it had (to its newline or the file's end)."""

    size: int


class TooLarge(Exception):
    """The decompressed file went past ``Limits.max_decompressed`` in line ``line``."""

    def __init__(self, line: int, limit: int):
        super().__init__(line, limit)  # as given, so that it can cross from a worker process intact
        self.line, self.limit = line, limit

    def __str__(self) -> str:
        return f"decompresses to more than {self.limit:,} bytes (--max-decompressed-bytes)"


class LineReader:
    """Iterates ``(line number, line)`` over ``length`` bytes of ``stream`` (to its end if None) for each
    line that is not empty; a line over the limit comes as ``(line number, TooLong)``. Empty lines are
    only counted, in ``blank``. ``decompressed`` caps what the stream may give (a gzip file), else None."""

    def __init__(
        self,
        stream: io.BufferedIOBase,
        first_line: int,
        max_line: int,
        length: int | None = None,
        decompressed: int | None = None,
        block: int = BLOCK,
    ):
        self.stream, self.number, self.max_line, self.block = stream, first_line, max_line, block
        self.left, self.cap = length, decompressed
        self.blank = 0

    def _blocks(self) -> Iterator[bytes]:
        given = 0
        while self.left is None or self.left > 0:
            # read1: what is there (a truncated gzip file gives its last good bytes before EOFError)
            block = self.stream.read1(self.block if self.left is None else min(self.block, self.left))
            if not block:
                return
            given += len(block)
            if self.left is not None:
                self.left -= len(block)
            if self.cap is not None and given > self.cap:  # the line of the first byte over the limit
                raise TooLarge(self.number + block.count(b"\n", 0, self.cap - given + len(block)), self.cap)
            yield block

    def skim(self) -> None:
        """Read to the end keeping nothing: only the decompression limit is checked (raises TooLarge)."""
        for block in self._blocks():
            self.number += block.count(b"\n")

    def __iter__(self) -> Iterator[tuple[int, bytes | TooLong]]:
        partial = bytearray()  # the start of a line that goes on in the next block
        over = 0  # bytes of a line already known to be too long, else 0
        for block in self._blocks():
            start, size = 0, len(block)
            while start < size:
                if not partial and not over and block[start] == 0x0A:  # a run of empty lines
                    end = _NEWLINES.match(block, start).end()  # type: ignore[union-attr]
                    self.blank += end - start
                    self.number += end - start
                    start = end
                    continue
                newline = block.find(b"\n", start)
                end = size if newline < 0 else newline
                if over:
                    over += end - start
                elif len(partial) + end - start > self.max_line:
                    over = len(partial) + end - start
                    partial.clear()
                elif newline >= 0 and not partial:
                    yield self.number, block[start:end]  # the usual case: the whole line in this block
                else:
                    partial += block[start:end]
                if newline < 0:
                    break
                if over or partial:
                    yield self.number, TooLong(over) if over else bytes(partial)
                    over = 0
                    partial.clear()
                self.number += 1
                start = newline + 1
        if over or partial:  # the last line, with no newline after it
            yield self.number, TooLong(over) if over else bytes(partial)
            self.number += 1
