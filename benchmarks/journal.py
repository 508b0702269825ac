"""What the audit journal costs an answer: microseconds per record on the request path.

``RecordWriter.submit`` now makes the record's line and appends it to the process's journal with one
write(2) before the answer leaves (service/storage/journal.py). This times, per record, interleaved
round-robin over the same records (an audit record of a real S1 assessment and a card record, the two a
patient-view call submits):

* ``line``           ``Record.line()``: the JSON line alone;
* ``submit``         ``RecordWriter.submit``: line, write(2), queueing (the writer thread lingers meanwhile);
* ``submit_sync0``   the same with NECKCHECK_JOURNAL_SYNC_MS=0: an fdatasync per record before the answer.

The journal sits in a temporary folder (``--dir``, default $TMPDIR: the default spool's disk).
``make bench`` reports ``measure`` as an information row; alone: ``python -m benchmarks.journal``.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.stats import summary
from service.assess import Assessor
from service.config import Settings
from service.storage import writer as writer_module
from service.storage.audit import AuditEvent
from service.storage.database import make_engine, upgrade
from service.storage.feedback import CardRecord
from service.storage.records import writer_for
from service.storage.writer import Record
from tests.scenarios import body


def records() -> list[Record]:
    bundle = json.loads(body("S1-observations.json"))
    event = AuditEvent.of(Assessor.load().run(bundle), bundle, "cds", "https://ehr.example|dr-1")
    now = dt.datetime.now(dt.UTC).isoformat()
    return [event, CardRecord("0" * 36, "neckcheck-patient-view", "warning", "imaging-referral", now)]


def measure(directory: Path, rounds: int) -> dict[str, dict[str, float]]:
    """Per-record timings (``benchmarks.stats.summary``, milliseconds) of each case, the journal in a new
    folder under ``directory``."""
    writer_module.LINGER = 3600.0  # the writer thread waits: only the request path is timed
    folder = Path(tempfile.mkdtemp(prefix="neckcheck-journal-bench-", dir=directory))
    atexit.register(shutil.rmtree, folder)  # after the writers' own exit (atexit runs the last first)
    url = f"sqlite:///{folder / 'records.db'}"

    upgrade(make_engine(url))
    writers = {
        sync_ms: writer_for(
            Settings.from_mapping(
                {"database_url": url, "spool_dir": folder / f"spool-{sync_ms}", "journal_sync_ms": sync_ms}
            ),
            make_engine(url),
        )
        for sync_ms in (100, 0)
    }
    cases: dict[str, Callable[[Record], object]] = {
        "line": lambda r: r.line(),
        "submit": writers[100].submit,
        "submit_sync0": writers[0].submit,
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    items = records()
    perf = time.perf_counter
    for n in range(rounds):
        names = list(cases)
        names = names[n % len(names) :] + names[: n % len(names)]
        for name in names:
            if name == "submit_sync0" and n % 10:
                continue  # an fdatasync each: one round in ten is enough
            record = items[n % len(items)]
            started = perf()
            cases[name](record)
            samples[name].append(perf() - started)
    return {name: summary(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--rounds", type=int, default=5000)
    args = parser.parse_args()
    measured = measure(args.dir, args.rounds)
    print(f"journal in {args.dir}, {args.rounds} rounds (records: an audit record and a card record)")
    for name, s in measured.items():
        print(
            f"{name:14} median {s['median_ms'] * 1e3:8.1f} us   p95 {s['p95_ms'] * 1e3:8.1f} us   n={s['n']}"
        )


if __name__ == "__main__":
    main()
