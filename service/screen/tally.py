"""Counts that add up across partitions, workers and Spark executors: the numbers of summary.json.

Two kinds: ``InputTally`` (what the lines were, per file) from reading the export, and ``ResultTally``
(risk, status, rules, missing facts, escalations without a referral) from assessing it. Each is plain
counters, so partial tallies saved by a partition or sent back by an executor simply add up.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from service.screen.patient import Outcome
from service.screen.records import ASSESS, COMPARE, MALFORMED, NO_PATIENT, SKIP, TOO_LARGE, TOO_LONG, Line


@dataclass
class InputTally:
    lines: Counter[str] = field(default_factory=Counter)  # by kind (records.py)
    types: Counter[str] = field(default_factory=Counter)  # assessed and compared types
    skipped: Counter[str] = field(default_factory=Counter)  # other types, skipped
    no_patient: Counter[str] = field(default_factory=Counter)  # by type
    malformed: Counter[str] = field(default_factory=Counter)  # by file
    too_long: Counter[str] = field(default_factory=Counter)  # lines over --max-line-bytes, by file
    too_large: Counter[str] = field(default_factory=Counter)  # files over --max-decompressed-bytes (1 each)

    def count(self, line: Line, file: str, n: int = 1) -> None:
        """``n`` lines like ``line`` in ``file`` (a file, for TOO_LARGE)."""
        if line.kind == TOO_LARGE:
            self.too_large[file] += n
            return
        self.lines[line.kind] += n
        rtype = line.resource_type or ""
        if line.kind in (ASSESS, COMPARE):
            self.types[rtype] += n
        elif line.kind == SKIP:
            self.skipped[rtype] += n
        elif line.kind == NO_PATIENT:
            self.no_patient[rtype] += n
        elif line.kind == MALFORMED:
            self.malformed[file] += n
        elif line.kind == TOO_LONG:
            self.too_long[file] += n

    def add(self, other: InputTally) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).update(getattr(other, name))

    def problems(self) -> int:
        """The lines of input-problems.ndjson these counts stand for."""
        return sum(self.lines[k] for k in (MALFORMED, NO_PATIENT, TOO_LONG)) + sum(self.too_large.values())

    def to_json(self) -> dict[str, Any]:
        return {name: dict(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InputTally:
        return cls(**{name: Counter(data.get(name, {})) for name in cls.__dataclass_fields__})


@dataclass
class ResultTally:
    patients: Counter[str] = field(default_factory=Counter)  # with a result / no facts / not assessed
    risk: Counter[str] = field(default_factory=Counter)
    status: Counter[str] = field(default_factory=Counter)
    risk_status: Counter[str] = field(default_factory=Counter)  # "moderate preliminary"
    rules: Counter[str] = field(default_factory=Counter)  # patients per fired rule
    ask: Counter[str] = field(default_factory=Counter)  # facts missing in preliminary results
    not_assessed: Counter[str] = field(default_factory=Counter)  # by HTTP status of the refusal
    escalation: Counter[str] = field(default_factory=Counter)  # patients per escalation order
    unmatched: Counter[str] = field(default_factory=Counter)  # ... with no matching ServiceRequest
    stale: Counter[str] = field(default_factory=Counter)  # readings too old to count, by fact
    # the escalation-gap measure: patients with escalation due / all of it ordered, per fired rule
    rules_due: Counter[str] = field(default_factory=Counter)
    rules_ordered: Counter[str] = field(default_factory=Counter)
    unmatched_patients: int = 0

    def count(self, outcome: Outcome) -> None:
        if outcome.no_facts:
            self.patients["no facts"] += 1
            return
        if outcome.error is not None:
            self.patients["not assessed"] += 1
            self.not_assessed[str(outcome.error["status"])] += 1
            return
        status = "final" if outcome.final else "preliminary"
        self.patients["with a result"] += 1
        self.risk[outcome.risk or ""] += 1
        self.status[status] += 1
        self.risk_status[f"{outcome.risk} {status}"] += 1
        self.rules.update(outcome.rules)
        if not outcome.final:
            self.ask.update(outcome.ask)
        self.escalation.update(outcome.escalation)
        self.unmatched.update(outcome.unmatched)
        self.unmatched_patients += bool(outcome.unmatched)
        self.stale.update(outcome.stale)
        self.patients["with stale readings"] += bool(outcome.stale)
        if outcome.escalation:  # the measure's denominator, and its numerator when nothing is unmatched
            self.patients["escalation due"] += 1
            self.rules_due.update(outcome.rules)
            if not outcome.unmatched:
                self.patients["escalation ordered"] += 1
                self.rules_ordered.update(outcome.rules)

    def add(self, other: ResultTally) -> None:
        for name in self._counters():
            getattr(self, name).update(getattr(other, name))
        self.unmatched_patients += other.unmatched_patients

    @classmethod
    def _counters(cls) -> list[str]:
        return [name for name in cls.__dataclass_fields__ if name != "unmatched_patients"]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: dict(getattr(self, name)) for name in self._counters()}
        out["unmatched_patients"] = self.unmatched_patients
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultTally:
        tally = cls()
        for name in cls._counters():
            getattr(tally, name).update(data.get(name, {}))
        tally.unmatched_patients = int(data.get("unmatched_patients", 0))
        return tally
