"""Progress on the terminal: a live bar with rate and ETA on a TTY (rich), plain periodic lines otherwise.

CI logs and ``nohup`` files get one line every ``interval`` seconds and one at the end of each phase,
with no carriage returns or colour codes. Two phases: reading the export (bytes) and assessing it
(resources, with the patient count and patients per second beside them).
"""

from __future__ import annotations

import time
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    def phase(self, name: str, total: int, unit: str) -> None: ...

    def advance(self, done: int, patients: int = 0) -> None: ...

    def status(self, text: str) -> None: ...

    def close(self) -> None: ...


def make_progress(stream: TextIO, interval: float) -> Progress:
    if stream.isatty():
        return BarProgress(stream)
    return LineProgress(stream, interval)


def _amount(value: float, unit: str) -> str:
    return f"{value / 1e6:,.1f} MB" if unit == "bytes" else f"{value:,.0f} {unit}"


class LineProgress:
    """``screen: assessing 4,000/10,000 resources (40%), 400 patients, 2,000 patients/s, ETA 3 s``."""

    def __init__(self, stream: TextIO, interval: float):
        self.stream, self.interval = stream, interval
        self.name, self.unit, self.total = "", "", 0
        self.done = self.patients = 0
        self.started = self.last = 0.0
        self.ending = False
        self.said = ""

    def phase(self, name: str, total: int, unit: str) -> None:
        self._end()
        self.name, self.total, self.unit = name, total, unit
        self.done = self.patients = 0
        self.started = self.last = time.monotonic()

    def advance(self, done: int, patients: int = 0) -> None:
        self.done, self.patients = self.done + done, self.patients + patients
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._print(now)

    def status(self, text: str) -> None:
        """A word from elsewhere (the FHIR server's X-Progress), shown once each time it changes."""
        if text != self.said:
            self.said = text
            print(f"screen: {text}", file=self.stream, flush=True)

    def _print(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        parts = [f"screen: {self.name} {_amount(self.done, self.unit)}"]
        if self.total:
            share = min(self.done / self.total, 1.0)
            parts[0] = (
                f"screen: {self.name} {_amount(self.done, self.unit)} of {_amount(self.total, self.unit)} "
                f"({100 * share:.0f}%)"
            )
        if self.patients:
            parts.append(f"{self.patients:,} patients, {self.patients / elapsed:,.0f} patients/s")
        else:
            parts.append(f"{_amount(self.done / elapsed, self.unit)}/s")
        if self.ending:
            parts.append(f"done in {elapsed:,.1f} s")
        elif self.total and self.done:
            parts.append(f"ETA {max(self.total - self.done, 0) * elapsed / self.done:,.0f} s")
        print(", ".join(parts), file=self.stream, flush=True)

    def _end(self) -> None:
        if self.name:
            self.done, self.ending = max(self.done, self.total), True
            self._print(time.monotonic())
            self.name, self.ending = "", False

    def close(self) -> None:
        self._end()


class BarProgress:
    """rich's live bar: description, bar, percentage, amount, rate, elapsed and remaining time."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Rich

        self.bar = Rich(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[amount]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=stream),
        )
        self.bar.start()
        self.task: Any = None
        self.unit, self.total, self.done, self.patients, self.started = "", 0, 0, 0, 0.0
        self.said = ""

    def phase(self, name: str, total: int, unit: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.total)
        self.unit, self.total, self.done, self.patients = unit, total, 0, 0
        self.started = time.monotonic()
        self.task = self.bar.add_task(name, total=total or None, amount="", rate="")

    def advance(self, done: int, patients: int = 0) -> None:
        self.done, self.patients = self.done + done, self.patients + patients
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (
            f"{self.patients:,} patients, {self.patients / elapsed:,.0f}/s"
            if self.patients
            else f"{_amount(self.done / elapsed, self.unit)}/s"
        )
        amount = f"{_amount(self.done, self.unit)}"
        self.bar.update(self.task, completed=self.done, amount=amount, rate=rate)

    def status(self, text: str) -> None:
        if text != self.said:
            self.said = text
            self.bar.console.print(f"screen: {text}")

    def close(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.total)
        self.bar.stop()
