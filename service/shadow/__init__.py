"""Shadow mode: a candidate rule table judged on live traffic before it goes live (issue 24).

With ``NECKCHECK_SHADOW_RULES`` set, every ``$assess`` and CDS Hooks call that gave an assessment is handed
here after its answer is made; a thread of each worker assesses the same input again under the candidate
table and compares the two results on what a committee compares (``Assessment.outcome``: status, risk,
rules fired, orders with their priority). A difference is counted in the metrics by transition, as
``neckcheck rules diff`` counts them, and stored (ids and the two results only) for ``neckcheck rules
shadow-report``.

The live answer never waits for the candidate and is never changed by it: the hand-over is a
``put_nowait`` on a bounded queue, and a call that finds the queue full is shed and counted, never
queued behind. The candidate sees the evaluation time the live call used (``now``), so the two differ by
their tables alone.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import threading
from dataclasses import dataclass
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
    """One per app: the candidate assessor, its bounded queue and (per process) its thread."""

    def __init__(
        self,
        candidate: Assessor,
        writer: RecordWriter,
        metrics: ShadowMetrics,
        size: int = 16,
        run_thread: bool = True,
    ):
        self.candidate = candidate
        self.writer = writer
        self.metrics = metrics
        self.rule_set = f"{candidate.table.id} {candidate.table.version}"
        self._calls: queue.Queue[_Call] = queue.Queue(maxsize=size)
        self._run_thread = run_thread  # False: nothing takes from the queue (tests of shedding)
        self._thread_pid: int | None = None  # the process whose thread runs: a fork has none
        self._lock = threading.Lock()

    def offer(self, body: Any, live: Assessment, channel: str) -> bool:
        """Hand a live call over, or shed it when the queue is full: returns at once either way."""
        try:
            self._calls.put_nowait(_Call.of(body, live, channel))
        except queue.Full:
            self.metrics.shed.inc()
            return False
        if self._run_thread and self._thread_pid != os.getpid():
            self._start()
        return True

    def _start(self) -> None:
        with self._lock:
            if self._thread_pid == os.getpid():
                return
            threading.Thread(target=self._loop, name="neckcheck-shadow", daemon=True).start()
            self._thread_pid = os.getpid()

    def _loop(self) -> None:
        while True:
            call = self._calls.get()
            try:
                self.compare(call)
            except Exception:  # one bad comparison must not stop the thread: say so, count it, go on
                log.exception("shadow evaluation failed")
                self.metrics.evaluations.labels(FAILED).inc()
            finally:
                self._calls.task_done()

    def drain(self) -> None:
        """Wait until every call handed over so far is compared (tests; the queue is bounded)."""
        self._calls.join()

    def compare(self, call: _Call) -> ShadowRecord | None:
        """The candidate's result beside the live one; a difference is counted and stored."""
        try:
            # the live evaluation time: from the body (asOf, Bundle.timestamp) as before, else the clock
            # reading the live call used
            candidate = self.candidate.run(call.body, now=call.as_of)
        except NeckcheckError:
            self.metrics.evaluations.labels(REFUSED).inc()
            return None
        before, after = call.before, candidate.outcome
        if before == after:
            self.metrics.evaluations.labels(SAME).inc()
            return None
        self.metrics.evaluations.labels(DIFFERENT).inc()
        moves = result_transitions(before, after)
        for kind, name in moves:
            self.metrics.transitions.labels(kind, name).inc()
        record = ShadowRecord(
            id=random_uuid(),
            at=dt.datetime.now(dt.UTC).isoformat(),
            channel=call.channel,
            live_rule_set=call.rule_set,
            shadow_rule_set=self.rule_set,
            subject=call.subject,
            input_hash=call.input_hash,
            before=json.dumps(before, sort_keys=True),
            after=json.dumps(after, sort_keys=True),
            transitions=[f"{kind}: {name}" for kind, name in moves],
        )
        self.writer.submit(record)
        return record


def _subject(live: Assessment) -> str:
    """``Patient/<id>``, or ``identifier system|value`` for a patient named by identifier only."""
    if live.subject is not None:
        return live.subject[:255]
    ident = live.subject_reference.get("identifier") or {}
    return f"identifier {ident.get('system', '')}|{ident.get('value', '')}"[:255]
