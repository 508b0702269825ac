"""OUTDIR/.work: the spilled partitions and the ledgers that make an interrupted run resumable.

.work/run.json            the run's settings: input files, evaluation time, partitions, rule set. A second
                          run on the same OUTDIR continues only with the same settings (and the same
                          fixed clock when --as-of was not given), else it stops and says so.
.work/spilled/fNNNNN-cCCCC.json  ledger of phase 1: chunk CCCCC of file NNNNN has been read completely,
                          with its counts and, for each file it wrote, that file's lines, bytes and SHA-256
.work/spill/fNNNNN-cCCCC/pNNNN.tsv  its lines for partition NNNN: ``patient \\t file \\t line \\t json``
.work/spill/fNNNNN-cCCCC/problems.ndjson  its malformed lines and resources with no Patient subject
.work/parts/pNNNN/        phase 2: partition NNNN assessed, its outputs and ``tally.json`` (its counts,
                          and the lines, bytes and SHA-256 of each output). Written under a temporary
                          name and renamed, so it is there completely or not at all: a patient is never
                          counted twice (a patient lives in exactly one partition).

The ledgers are trusted only as far as they can be checked. A file is fsync'd, and so is its folder,
before a ledger names it; a ledger is written last, atomically. On resume every file a ledger names is
read again and compared with it; one that differs is redone from the input (``Damaged`` says which).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from service.errors import InvalidInput

SETTINGS = "run.json"
BUFFER = 1 << 16  # a written file's lines are gathered this much at a time
BLOCK = 1 << 20  # a read one is read this much at a time


class Damaged(Exception):
    """A file of the work folder is not what its ledger says (cut, changed, missing, unreadable)."""

    def __init__(self, path: Path, problem: str):
        super().__init__(path, problem)  # as given, so that it crosses from a worker process intact
        self.path, self.problem = path, problem

    def __str__(self) -> str:
        return f"{self.path} is damaged: {self.problem}"


@dataclass(frozen=True)
class Entry:
    """What a ledger records of one file it names."""

    lines: int
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "bytes": self.size, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Any) -> Entry:
        """Raises ValueError for anything but a well-formed entry (a damaged ledger)."""
        if not isinstance(data, dict):
            raise ValueError("not a ledger entry")
        lines, size, digest = data.get("lines"), data.get("bytes"), data.get("sha256")
        if not (isinstance(lines, int) and isinstance(size, int) and isinstance(digest, str)):
            raise ValueError("not a ledger entry")
        return cls(lines, size, digest)


class Checksum:
    """Counts and hashes lines as they pass, written or read."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.lines = self.size = 0

    def add(self, data: bytes | bytearray) -> None:
        self.hash.update(data)
        self.lines += data.count(b"\n")
        self.size += len(data)

    def entry(self) -> Entry:
        return Entry(self.lines, self.size, self.hash.hexdigest())

    def check(self, path: Path, recorded: Entry) -> None:
        """Raises Damaged unless what passed is what the ledger recorded."""
        got = self.entry()
        if got.size != recorded.size or got.lines != recorded.lines:
            raise Damaged(
                path,
                f"{got.lines:,} lines, {got.size:,} bytes; "
                f"its ledger says {recorded.lines:,} lines, {recorded.size:,} bytes",
            )
        if got.sha256 != recorded.sha256:
            raise Damaged(path, "its SHA-256 is not the one in its ledger")


class LineFile:
    """A work file written a line at a time; ``close`` makes it durable and says what to record of it.
    Lines are gathered and hashed 64 kB at a time: a call per line costs more than the hashing."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.stream: BinaryIO = path.open("wb", buffering=0)
        self.sum = Checksum()
        self.buffer = bytearray()

    def write(self, line: bytes) -> None:
        self.buffer += line
        if len(self.buffer) >= BUFFER:
            self._flush()

    def _flush(self) -> None:
        self.sum.add(self.buffer)
        self.stream.write(self.buffer)
        self.buffer.clear()

    def close(self) -> Entry:
        self._flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        return self.sum.entry()


def checked_lines(path: Path, recorded: Entry) -> Iterator[bytes]:
    """The lines of a work file, each with its newline, read and hashed a block at a time; once all are
    given, raises Damaged unless the file is what its ledger recorded."""
    seen = Checksum()
    partial = b""
    try:
        with path.open("rb") as stream:
            while block := stream.read(BLOCK):
                seen.add(block)
                lines = (partial + block).split(b"\n")
                partial = lines.pop()
                for line in lines:
                    yield line + b"\n"
    except OSError as exc:
        raise Damaged(path, exc.strerror or str(exc)) from exc
    if partial:
        yield partial
    seen.check(path, recorded)


def verify(path: Path, recorded: Entry) -> None:
    """Read ``path`` again and compare it with its ledger entry; raises Damaged."""
    seen = Checksum()
    try:
        with path.open("rb") as stream:
            while block := stream.read(BLOCK):
                seen.add(block)
    except OSError as exc:
        raise Damaged(path, exc.strerror or str(exc)) from exc
    seen.check(path, recorded)


def read_ledger(path: Path) -> dict[str, Any]:
    """A ledger's JSON object; raises Damaged when it cannot be read as one."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise Damaged(path, "missing") from exc
    except (OSError, ValueError) as exc:
        raise Damaged(path, f"not a readable ledger ({exc})") from exc
    if not isinstance(data, dict):
        raise Damaged(path, "not a readable ledger")
    return data


@dataclass(frozen=True)
class WorkDir:
    root: Path

    @property
    def settings_file(self) -> Path:
        return self.root / SETTINGS

    def spilled(self, chunk: str) -> Path:
        return self.root / "spilled" / f"{chunk}.json"

    def spill(self, chunk: str) -> Path:
        return self.root / "spill" / chunk

    def piece(self, partition: int, chunk: str) -> Path:
        return self.spill(chunk) / f"p{partition:04d}.tsv"

    def problems(self, chunk: str) -> Path:
        return self.spill(chunk) / "problems.ndjson"

    def part(self, partition: int) -> Path:
        return self.root / "parts" / f"p{partition:04d}"

    def settings(self, wanted: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded settings if a run was started here, else None (and ``wanted`` is recorded).

        Raises InvalidInput when the settings are damaged: without them (the clock above all) the
        unfinished run cannot be continued as it began."""
        if self.settings_file.exists() or self.started():
            try:
                return _settings(read_ledger(self.settings_file))
            except (Damaged, KeyError, TypeError) as exc:
                problem = exc.problem if isinstance(exc, Damaged) else str(exc)
                raise InvalidInput(
                    f"{self.settings_file} is damaged ({problem}): the unfinished run in "
                    f"{self.root.parent} cannot be continued; use --force to start it again"
                ) from exc
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomically(self.settings_file, json.dumps(wanted, indent=1).encode("utf-8"))
        return None

    def started(self) -> bool:
        """Work was done here (run.json is written before anything else)."""
        ours = (SETTINGS, SETTINGS + ".tmp")
        return self.root.is_dir() and any(p.name not in ours for p in self.root.iterdir())

    @property
    def removed(self) -> Path:
        """Where the folder goes to be deleted (and what a crash while deleting it leaves)."""
        return self.root.with_name(self.root.name + ".removed")

    def remove(self) -> None:
        """Out of the way at once (a rename), then deleted: a crash part-way leaves no half work folder."""
        shutil.rmtree(self.removed, ignore_errors=True)
        if self.root.exists():
            self.root.rename(self.removed)
            sync_folder(self.root.parent)
            shutil.rmtree(self.removed)


def _settings(data: dict[str, Any]) -> dict[str, Any]:
    """Raises KeyError or TypeError for settings a run could not have written."""
    missing = [k for k in ("inputs", "evaluationTime", "partitions", "ruleSet") if k not in data]
    if missing:
        raise KeyError(f"no {', '.join(missing)}")
    if not isinstance(data["partitions"], int) or not isinstance(data["evaluationTime"], dict):
        raise TypeError("settings of the wrong type")
    return data


def sync_folder(path: Path) -> None:
    """fsync a folder, so that the names in it (a new file, a rename) survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Write, fsync, rename, fsync the folder: a reader sees the whole file or none of it, also after a
    power cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    tmp.replace(path)
    sync_folder(path.parent)
