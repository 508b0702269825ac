"""A spool: records that could not be stored yet, kept as NDJSON lines in the files of one directory.

Each process appends to its own file (``<prefix>-<pid>.ndjson``), so workers never interleave a line, and
every append is fsync'd before it returns: a spooled record survives a crash of the process or the node.
A replay claims a whole file with an atomic rename (one worker replays it, the others skip it), holds its
flock(2) while it hands its lines to the store in chunks, and puts back whatever the store could not
take; a claim whose lock nobody holds is a replay that died, and is put back whole. The journal segments
of processes that died (service/storage/journal.py) join the spool the same way: by a rename, once their
lock is free.

A line the store refuses for good goes to ``quarantine.ndjson`` in the same directory, so that one bad
record never holds up the records behind it (deploy/README.md: what to do with that file).

Nothing here knows what a record means (service/storage/writer.py does). The prefix is "audit" because
the audit trail was the first to be spooled; the files now hold card and feedback records too.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from service.errors import StorageUnavailable

log = logging.getLogger("neckcheck.storage")

CHUNK = 500  # lines handed to the store at once during a replay: a long outage replays in bounded steps
QUARANTINE = "quarantine.ndjson"
ABANDONED_SECONDS = 60  # a journal segment still unnamed this long after its creation was abandoned


class Spool:
    def __init__(self, directory: Path, max_bytes: int, prefix: str = "audit"):
        self.directory = directory
        self.max_bytes = max_bytes  # readiness turns 503 at this size (NECKCHECK_SPOOL_MAX_BYTES)
        self.prefix = prefix

    @property
    def quarantine_file(self) -> Path:
        return self.directory / QUARANTINE

    def append(self, lines: Sequence[str]) -> None:
        """Keep records (one JSON text each) durably; OSError if the disk refuses.

        Past ``max_bytes`` records are still written while the disk takes them: the bound is where the
        replica stops taking traffic, not where it starts dropping the audit trail.
        """
        if lines:
            _append(self.directory / f"{self.prefix}-{os.getpid()}.ndjson", lines)

    def quarantine(self, line: str) -> None:
        _append(self.quarantine_file, [line])

    @property
    def journal_dir(self) -> Path:
        """Where each process journals its records before answering (service/storage/journal.py)."""
        return self.directory / "journal"

    def files(self) -> list[Path]:
        """The files waiting for a replay, after taking in the journals of processes that died and the
        files of a replay that died (a file whose lock nobody holds has no owner any more)."""
        if not self.directory.is_dir():
            return []
        self._adopt_journals()
        for orphan in self.directory.glob(f"{self.prefix}-*.replaying-*"):
            with _unowned(orphan) as file:
                if file is not None:  # whole, by a rename: a copy could be torn by another kill
                    with contextlib.suppress(FileNotFoundError):
                        orphan.rename(orphan.with_name(f"{orphan.stem}-{secrets.token_hex(4)}.ndjson"))
        return sorted(self.directory.glob(f"{self.prefix}-*.ndjson"))

    def _adopt_journals(self) -> None:
        """Move each journal segment no process holds into the spool, whole, with one rename: the
        segment of a process that was killed. A segment created but never named (locked, then named
        at once: see journal.py) is empty, and removed once it is clearly not being named any more."""
        if not self.journal_dir.is_dir():
            return
        for segment in self.journal_dir.iterdir():
            with _unowned(segment) as file:
                if file is None:
                    continue
                if segment.name.endswith(".ndjson"):
                    _drop_unfinished_line(segment, file)
                    with contextlib.suppress(FileNotFoundError):  # adopted by another process meanwhile
                        segment.rename(self.directory / f"{self.prefix}-{segment.name}")
                elif time.time() - os.fstat(file.fileno()).st_mtime > ABANDONED_SECONDS:
                    segment.unlink(missing_ok=True)

    def size(self) -> int:
        """Bytes waiting, including files being replayed right now: what ``max_bytes`` bounds."""
        total = 0
        if self.directory.is_dir():
            for path in self.directory.glob(f"{self.prefix}-*"):
                with contextlib.suppress(FileNotFoundError):  # replayed meanwhile
                    total += path.stat().st_size
        return total

    def pending(self) -> int:
        return sum(len(_lines(path)) for path in self.files())

    def problem(self) -> str | None:
        """None while the spool can take more records; otherwise why not (readiness reports it)."""
        probe = self.directory / f".probe-{os.getpid()}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with probe.open("wb") as file:  # a real write: catches a full disk as well as permissions
                file.write(b"probe\n")
                file.flush()
                os.fsync(file.fileno())
            probe.unlink()
        except OSError as exc:
            return f"the audit spool is not writable ({exc.strerror or type(exc).__name__})"
        size = self.size()
        if size >= self.max_bytes:
            return f"the audit spool is full ({size} bytes, NECKCHECK_SPOOL_MAX_BYTES is {self.max_bytes})"
        return None

    def replay(self, store: Callable[[list[str]], None]) -> int:
        """Hand every spooled line to ``store``, chunk by chunk; the number of lines it took.

        ``store`` raises StorageUnavailable with the lines it could not take: those and every later line
        go back to the spool, and the replay stops there (the database is away again).
        """
        taken = 0
        for path in self.files():
            # a name of this claim alone (a pid comes back after a restart); its lock says it is alive
            claimed = path.with_suffix(f".replaying-{os.getpid()}-{secrets.token_hex(4)}")
            try:
                path.rename(claimed)  # atomic: one worker replays a file, the others skip it
            except FileNotFoundError:
                continue
            with claimed.open("rb") as file:
                fcntl.flock(file, fcntl.LOCK_EX)  # after an append under way (see _append), until done
                lines = _read(file)
                for start in range(0, len(lines), CHUNK):
                    chunk = lines[start : start + CHUNK]
                    try:
                        store(chunk)
                    except StorageUnavailable as exc:
                        _give_back(claimed, path, exc.lines + lines[start + CHUNK :])
                        raise
                    except BaseException:
                        _give_back(claimed, path, lines[start:])
                        raise
                    taken += len(chunk)
                claimed.unlink()
        return taken


def _lines(path: Path) -> list[str]:
    """The records of a file, once no append to it is under way (see _append)."""
    with path.open("rb") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        return _read(file)


def _read(file: BinaryIO) -> list[str]:
    text = file.read().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()]


@contextlib.contextmanager
def _unowned(path: Path) -> Iterator[BinaryIO | None]:
    """The file, locked, if no process holds its lock and it is still under its name; else None.

    The lock is flock(2)'s, which the kernel drops when its holder dies however it dies: the one sign
    of a dead owner that a reused pid cannot fake.
    """
    try:
        file = path.open("rb")
    except (FileNotFoundError, IsADirectoryError):
        yield None
        return
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            same = os.stat(path).st_ino == os.fstat(file.fileno()).st_ino
        except (BlockingIOError, FileNotFoundError):
            same = False
        yield file if same else None


def _drop_unfinished_line(segment: Path, file: BinaryIO) -> None:
    """Cut a last line without its newline from a dead process's journal segment: the process died in
    the write(2) of that line, so its answer never left (journal.py stops writing a segment after a
    failed or short write)."""
    data = file.read()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        os.truncate(segment, end)
        log.warning(
            "journal %s: dropped a line its process died writing (%d bytes)", segment.name, len(data) - end
        )


def _give_back(claimed: Path, path: Path, lines: list[str]) -> None:
    """Return unstored lines to the spool (after anything spooled meanwhile), then drop the claim. Killed
    in between, the claim is returned whole later: its lines are stored once all the same (by id)."""
    if lines:
        _append(path, lines)
    claimed.unlink()


def _append(path: Path, lines: Sequence[str]) -> None:
    """Append lines and fsync, under an exclusive lock on the file.

    A replay renames a file and then takes the same lock before reading it, so an append either lands
    before that read or finds its file renamed (another inode under the name, or none) and starts again
    on a fresh one: no line is written into a file that has already been read. A line torn by a hard kill
    is closed first, so it cannot swallow the next.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    while True:
        with path.open("ab+") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            try:
                if os.stat(path).st_ino != os.fstat(file.fileno()).st_ino:
                    continue  # claimed by a replay meanwhile
            except FileNotFoundError:
                continue
            if file.seek(0, os.SEEK_END):
                file.seek(-1, os.SEEK_END)
                if file.read(1) != b"\n":
                    data = b"\n" + data
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
            return
