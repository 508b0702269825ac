"""A spool: records that could not be stored yet, kept as NDJSON lines in the files of one directory.

Each process appends to its own file (``<prefix>-<pid>.ndjson``), so workers never interleave a line, and
every append is fsync'd before it returns: a spooled record survives a crash of the process or the node.
A replay claims a whole file with an atomic rename (one worker replays it, the others skip it), hands its
lines to the store in chunks, and puts back whatever the store could not take.

A line the store refuses for good goes to ``quarantine.ndjson`` in the same directory, so that one bad
record never holds up the records behind it (deploy/README.md: what to do with that file).

Nothing here knows what a record means (service/storage/writer.py does). The prefix is "audit" because
the audit trail was the first to be spooled; the files now hold card and feedback records too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from service.errors import StorageUnavailable

CHUNK = 500  # lines handed to the store at once during a replay: a long outage replays in bounded steps
QUARANTINE = "quarantine.ndjson"


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

    def files(self) -> list[Path]:
        """The files waiting for a replay, after taking back those of a worker that died mid-replay."""
        if not self.directory.is_dir():
            return []
        for orphan in self.directory.glob(f"{self.prefix}-*.replaying-*"):
            if not _alive(int(orphan.suffix.rsplit("-", 1)[1])):
                _give_back(orphan, orphan.with_suffix(".ndjson"), _lines(orphan))
        return sorted(self.directory.glob(f"{self.prefix}-*.ndjson"))

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
            claimed = path.with_suffix(f".replaying-{os.getpid()}")
            try:
                path.rename(claimed)  # atomic: one worker replays a file, the others skip it
            except FileNotFoundError:
                continue
            lines = _lines(claimed)
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
        text = file.read().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()]


def _give_back(claimed: Path, path: Path, lines: list[str]) -> None:
    """Return unstored lines to the spool (after anything spooled meanwhile), then drop the claim."""
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
