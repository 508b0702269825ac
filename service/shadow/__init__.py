"""Shadow mode: a candidate rule table judged on live traffic before it goes live (issue 24).

With ``NECKCHECK_SHADOW_RULES`` set, every ``$assess`` and CDS Hooks call that gave an assessment is handed
here after its answer is made; a low-priority child process of each worker assesses the same input again
under the candidate table and compares the two results on what a committee compares
(``Assessment.outcome``: status, risk, rules fired, orders with their priority). A difference is
counted in the metrics by transition, as ``neckcheck rules diff`` counts them, and stored (ids and the two
results only) for ``neckcheck rules shadow-report``.

The live answer never waits for the candidate and is never changed by it: the hand-over is a
``put_nowait`` on a bounded queue, and a call that finds the queue full is shed and counted, never
queued behind. The candidate sees the evaluation time the live call used (``now``), so the two differ by
their tables alone.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from service.assess import Assessment, Assessor
from service.errors import NeckcheckError
from service.ids import random_uuid
from service.rules.compare import result_transitions
from service.storage.shadow import ShadowRecord
from service.storage.writer import RecordWriter

log = logging.getLogger("neckcheck.shadow")

SAME, DIFFERENT, REFUSED, FAILED = "same", "different", "refused", "failed"


@dataclass(frozen=True)
class _Call:
    """What the thread needs of a live call, taken in the request's thread: the thread never touches the
    live Assessment, whose lazily built parts belong to the request."""

    body: Any  # the request body as the live call assessed it
    before: dict[str, Any]  # Assessment.outcome under the live table
    as_of: dt.datetime
    rule_set: str
    subject: str
    input_hash: str
    channel: str  # http | cds

    @classmethod
    def of(cls, body: Any, live: Assessment, channel: str) -> _Call:
        return cls(body, live.outcome, live.as_of, live.rule_set, _subject(live), live.input_hash, channel)


class ShadowMetrics:
    """The candidate's counters, in the app's registry (so /metrics adds up every worker's)."""

    def __init__(self, registry: CollectorRegistry):
        self.evaluations = Counter(
            "neckcheck_shadow_evaluations",
            "Live calls evaluated again under the candidate rule table, by outcome (same, different, "
            "refused by the candidate, failed)",
            ["outcome"],
            registry=registry,
        )
        self.shed = Counter(
            "neckcheck_shadow_shed",
            "Live calls not evaluated under the candidate: its queue was full (live answers never wait)",
            registry=registry,
        )
        self.transitions = Counter(
            "neckcheck_shadow_transitions",
            "Ways the candidate's result differs from the live one (as neckcheck rules diff counts them)",
            ["kind", "transition"],
            registry=registry,
        )


class Shadow:
    """One per app: where the candidate table is, its bounded queue, and (per worker) its process.

    The candidate runs in a child process of each worker at the lowest CPU priority (nice 19), not on a
    thread of the worker: a thread would hold the worker's GIL for a whole assessment, and every request
    arriving meanwhile would wait for it (make bench's shadow phase measured +12 % to +70 % on the CDS p99
    that way). The worker only pickles the call into the queue; a collector thread takes the child's small
    answers back, counts them and hands a difference to the record writer.
    """

    def __init__(
        self,
        tables: Tables,
        writer: RecordWriter,
        metrics: ShadowMetrics,
        size: int = 16,
        start: bool = True,
    ):
        self.tables = tables
        self.writer = writer
        self.metrics = metrics
        self.size = size
        self._start_child = start  # False: nothing takes from the queue (tests of shedding)
        self._pid: int | None = None  # the worker whose child and collector run: a fork has none
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self._calls: Any = None  # multiprocessing.Queue of _Call, made per worker

    def offer(self, body: Any, live: Assessment, channel: str) -> bool:
        """Hand a live call over, or shed it when the queue is full: returns at once either way."""
        if self._pid != os.getpid():
            self._start()
        with self._idle:
            self._pending += 1
        try:
            self._calls.put_nowait(_Call.of(body, live, channel))
        except queue.Full:
            self._done()
            self.metrics.shed.inc()
            return False
        return True

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            spawn = multiprocessing.get_context("spawn")  # a fork of a threaded worker is not safe
            self._calls = spawn.Queue(maxsize=self.size)
            self._pending = 0
            if self._start_child:
                answers = spawn.Queue()
                spawn.Process(
                    target=candidate_process,
                    args=(self.tables, self._calls, answers, os.getpid()),
                    name="neckcheck-shadow",
                    daemon=True,  # ends with the worker (and checks for its parent, see below)
                ).start()
                threading.Thread(
                    target=self._collect, args=(answers,), name="neckcheck-shadow", daemon=True
                ).start()
            self._pid = os.getpid()

    def _collect(self, answers: Any) -> None:
        while True:
            outcome, record = answers.get()
            try:
                self.metrics.evaluations.labels(outcome).inc()
                if record is not None:
                    for move in record.transitions:
                        kind, _, name = move.partition(": ")
                        self.metrics.transitions.labels(kind, name).inc()
                    self.writer.submit(record)
            except Exception:  # one bad answer must not stop the collector: say so, go on
                log.exception("shadow answer not recorded")
            finally:
                self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def drain(self, timeout: float = 120) -> bool:
        """Wait until every call handed over so far is compared (tests): True if they all are."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)


@dataclass(frozen=True)
class Tables:
    """Where the candidate and the codes are: the child loads them itself (a table is not sent over)."""

    rules: Path
    codes: Path
    max_entries: int


def candidate_process(tables: Tables, calls: Any, answers: Any, parent: int) -> None:
    """The child: at the lowest priority, assess each call under the candidate until the worker is gone."""
    os.nice(19)
    candidate = Assessor.load(tables.rules, tables.codes, tables.max_entries)
    rule_set = f"{candidate.table.id} {candidate.table.version}"
    while True:
        try:
            call = calls.get(timeout=1)
        except queue.Empty:
            if os.getppid() != parent:  # the worker died without ending us (SIGKILL)
                return
            continue
        try:
            answers.put(compare(candidate, rule_set, call))
        except Exception:
            log.exception("shadow evaluation failed")
            answers.put((FAILED, None))


def compare(candidate: Assessor, rule_set: str, call: _Call) -> tuple[str, ShadowRecord | None]:
    """The candidate's result beside the live one: the outcome, and the record of a difference."""
    try:
        # the live evaluation time: from the body (asOf, Bundle.timestamp) as before, else the clock
        # reading the live call used
        result = candidate.run(call.body, now=call.as_of)
    except NeckcheckError:
        return REFUSED, None
    before, after = call.before, result.outcome
    if before == after:
        return SAME, None
    moves = result_transitions(before, after)
    return DIFFERENT, ShadowRecord(
        id=random_uuid(),
        at=dt.datetime.now(dt.UTC).isoformat(),
        channel=call.channel,
        live_rule_set=call.rule_set,
        shadow_rule_set=rule_set,
        subject=call.subject,
        input_hash=call.input_hash,
        before=json.dumps(before, sort_keys=True),
        after=json.dumps(after, sort_keys=True),
        transitions=[f"{kind}: {name}" for kind, name in moves],
    )


def _subject(live: Assessment) -> str:
    """``Patient/<id>``, or ``identifier system|value`` for a patient named by identifier only."""
    if live.subject is not None:
        return live.subject[:255]
    ident = live.subject_reference.get("identifier") or {}
    return f"identifier {ident.get('system', '')}|{ident.get('value', '')}"[:255]
