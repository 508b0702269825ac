"""The journal: every record is in a file of the process that answered before its answer leaves.

The record writer (writer.py) stores records from memory, in batches, after a linger; a process killed
meanwhile (SIGKILL: the OOM killer, Kubernetes at the end of a grace period, an operator) would take them
along. So each record is first appended to the process's journal with one write(2) on an O_APPEND file:
once that call returns the line is the kernel's, whatever happens to the process, and only then does the
answer leave. The writer still stores the records from memory; a journal is read back only when its
process died first.

A journal is a series of segments beside the spool, ``journal/<pid>-<token>-<n>.ndjson``: when the writer
takes the records that arrived it swaps in a fresh segment, and once those records are in the database
(or the spool, fsync'd) it deletes theirs. Each segment is held with an exclusive flock(2) for as long as
its process may still write it or store from it, and the kernel drops that lock however the process ends.
A segment whose lock can be taken has no owner: ``Spool.files`` adopts it into the spool (an atomic
rename, so one process wins), whose replay stores each record once, by its id.

Power loss: a written line sits in the page cache, so a sync thread fdatasyncs the segments with new
lines every ``sync_interval`` seconds (NECKCHECK_JOURNAL_SYNC_MS); at 0 each line is synced before its
answer leaves.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("neckcheck.storage")

SUFFIX = ".ndjson"
CREATING = ".new"  # a segment before it is locked, under a name no adopter takes


class Segment:
    """One journal file, and in memory the records written to it, each with its line."""

    def __init__(self, path: Path | None, fd: int):
        self.path = path
        self.fd = fd
        self.items: list[tuple[Any, str]] = []  # (record, line): what the writer stores from this segment
        self.written = 0  # bytes written
        self.synced = 0  # bytes known to be on disk
        self.broken = fd < 0  # no file, or a write failed: nothing more is written to it
        self.closed = fd < 0
        self.named = False  # its name (a directory entry) is on disk: synced with the first lines

    @classmethod
    def create(cls, directory: Path, name: str) -> Segment:
        """A new segment, locked before it has its name; OSError if the disk refuses."""
        creating = directory / f".{name}{CREATING}"
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(creating, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # before the name an adopter looks at: never taken while alive
            path = creating.with_name(name + SUFFIX)
            os.rename(creating, path)
        except OSError:
            os.close(fd)
            raise
        return cls(path, fd)

    def write(self, data: bytes) -> str | None:
        """Append ``data`` with one write(2); why not, if the disk refused (the segment takes no more)."""
        if self.broken:
            return "no journal file"
        try:
            written = os.write(self.fd, data)
        except OSError as exc:
            written, reason = 0, _reason(exc)
        else:
            reason = "short write"
        if written != len(data):
            # a partial line may end the file now; writing after it would spoil the next line as well
            self.broken = True
            return reason
        self.written += written
        return None

    def sync(self) -> None:
        """fdatasync what was written since the last sync (the sync thread, or the answer at 0 ms)."""
        size = self.written
        if size <= self.synced or self.closed:
            return
        try:
            os.fdatasync(self.fd)
            if not self.named and self.path is not None:  # a new file's name is its directory's data
                directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
                self.named = True
        except OSError as exc:
            if not self.closed:  # closed meanwhile: its records are stored, nothing to keep
                log.error("audit journal not synced (%s)", _reason(exc))
            return
        self.synced = max(self.synced, size)

    def close(self, keep: bool) -> None:
        """Delete the file (its records are stored or spooled), or ``keep`` it for an adopter."""
        if self.closed:
            return
        self.closed = True
        if not keep and self.path is not None:
            try:
                self.path.unlink()  # before the lock goes: no adopter ever sees stored records
            except FileNotFoundError:
                pass  # already gone (its folder removed): nothing is left to replay
            except OSError as exc:
                log.error("audit journal segment not removed (%s): it will be replayed", _reason(exc))
        os.close(self.fd)


class Journal:
    """The segments of one process (made again after a fork: see ``RecordWriter._start_writer``)."""

    def __init__(self, directory: Path, sync_interval: float, unjournaled: Callable[[], None] | None = None):
        self.directory = directory
        self.sync_interval = sync_interval
        self._unjournaled = unjournaled  # counts a record answered without its line (metrics)
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}"  # a pid comes back after a restart
        self._number = 0
        self._failing = False  # the disk refused the journal (logged once)
        self._lock = threading.Lock()
        self._current = self._segment()
        self._taken: list[Segment] = []  # segments whose records the writer is storing
        self._unsynced = threading.Event()
        if sync_interval > 0:
            threading.Thread(target=self._sync_loop, name="neckcheck-journal", daemon=True).start()

    def _segment(self) -> Segment:
        self._number += 1
        try:
            segment = Segment.create(self.directory, f"{self._name}-{self._number}")
        except OSError as exc:
            self._failed(_reason(exc))
            return Segment(None, -1)  # the next batch tries again
        return segment

    def _failed(self, reason: str) -> None:
        """Say so once, not once per record or batch, while the journal's disk refuses."""
        if not self._failing:
            self._failing = True
            log.error("audit journal not writable (%s): records kept in memory only until it is", reason)

    def append(self, record: Any) -> None:
        """Write the record's line to the current segment, and keep the record for the writer.

        Both under one lock: the writer swaps segments under it, so a record is always stored from the
        segment that holds its line, and that segment is deleted only after the record is stored.
        """
        line = record.line()
        data = (line + "\n").encode()
        with self._lock:
            segment = self._current
            refused = segment.write(data)
            segment.items.append((record, line))
        if refused is not None:
            self._failed(refused)
            if self._unjournaled:
                self._unjournaled()
            return
        if self._failing:
            self._failing = False
            log.warning("audit journal written again")
        if self.sync_interval <= 0:
            segment.sync()
        elif not self._unsynced.is_set():  # a reading of a flag: the Event's lock once per interval
            self._unsynced.set()

    def pending(self) -> bool:
        return bool(self._current.items)

    def take(self) -> Segment:
        """The current segment, with its records, for the writer to store; a fresh one takes its place."""
        if not self._current.items and not self._current.broken:
            return Segment(None, -1)  # nothing arrived: no new file
        fresh = self._segment()  # outside the lock: requests go on writing meanwhile
        with self._lock:
            taken, self._current = self._current, fresh
            self._taken.append(taken)
        return taken

    def done(self, segment: Segment, kept: bool) -> None:
        """The writer is through with a segment: its records are stored or spooled if ``kept``; else
        (the spool refused them too) the file stays, unlocked, for an adopter to replay."""
        with self._lock:
            if segment in self._taken:
                self._taken.remove(segment)
        segment.close(keep=not kept)

    def close(self) -> None:
        """At exit, after the writer's flush: an empty segment goes, one with records stays for adoption."""
        with self._lock:
            segment, self._current = self._current, Segment(None, -1)
        segment.close(keep=bool(segment.items))

    def forget(self) -> None:
        """In a forked child: close the parent's descriptors (the parent keeps its locks and records)."""
        for segment in [self._current, *self._taken]:
            if not segment.closed:
                segment.closed = True
                os.close(segment.fd)

    def _sync_loop(self) -> None:
        while True:
            self._unsynced.wait()  # the first line after a sync
            time.sleep(self.sync_interval)  # the others arrive meanwhile
            self._unsynced.clear()  # before syncing: a line written from now on sets it again
            with self._lock:
                segments = [self._current, *self._taken]
            for segment in segments:
                segment.sync()


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
