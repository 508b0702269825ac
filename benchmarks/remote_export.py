"""Where the time of ``neckcheck screen <server>/Patient`` goes, against a real FHIR server (issue 23).

    .venv/bin/python -m benchmarks.remote_export [--patients 10000] [--deadline 2400] [--out split.json]

The test EHR of tests/screen/ehr.py, built from its own parts: SEKMET (tests/fhir_server.py) on 127.0.0.1
with SMART Backend Services, behind the pass-through proxy of tests/screen/fault_proxy.py, a generated
population (benchmarks/bulk_export.py, seed 23) loaded with ``ehr.load`` (one transaction per patient,
straight to the server, timed apart: it is not the export). Then the command a user runs, as a
subprocess: ``neckcheck screen <proxy>/fhir/Patient --client-id ... --key ... --workers 2``.

The command reports its screening phases itself (``reading`` and ``assessing``, ``done in`` on its progress
lines), not the export's, so the export is timed from outside: the proxy passes every request on
unchanged and the benchmark notes when each arrived and when the server's answer came back. The split:

* kick-off: from starting the command until the server accepted the $export (202): Python start-up, the
  CapabilityStatement, the SMART configuration, the token, the kick-off request itself;
* waiting: from the 202 until the status request that got the manifest (200), with the number of polls;
* download: from the manifest until the command told the server it was done with the job (DELETE): every
  file streamed to disk, fsync'd and hashed, the error files read; bytes, files, and the server's part
  (the time the proxy waited for the file bodies);
* screening: from that DELETE until the command exited (the reading and assessing phases, the outputs);
* total: the command's wall time.

The proxy reads each answer whole before passing it on (Connection: close), which a user's network would
not: the download's time includes that copy over loopback. SEKMET's token lifetime is set to 300 s (the
tests use 8 s to exercise renewal; SMART Backend Services says five minutes at most). Bounded: one
deadline (--deadline) over everything, after which the command is killed; the servers are stopped and the
temporary folder removed at the end whatever happened. Not part of ``make bench``.

``--no-type-filter``: the proxy drops ``_typeFilter`` from the kick-off, as a server that ignores it would.
SEKMET 0.1.1 applies it with one SQL query per Observation over every Observation's codes, so with it an
export takes time quadratic in the population: hours at 10,000 patients (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks.bulk_export import AS_OF, write_export
from tests.fhir_server import start
from tests.live import free_port
from tests.screen.ehr import Keys, load, settings
from tests.screen.fault_proxy import Exchange, Forward, Reply, proxying

ROOT = Path(__file__).resolve().parents[1]
TOKEN_SECONDS = 300
_DONE_IN = re.compile(r"^screen: (\w+) .*done in ([\d,.]+) s$")


class Overdue(Exception):
    """The benchmark's deadline passed."""


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it: when it arrived, when the server's answer was back."""

    method: str
    path: str
    status: int
    arrived: float
    answered: float
    size: int
    progress: str  # the answer's X-Progress, if any


class Timeline:
    """A proxy rule that passes every request on and notes its times (time.monotonic, as here)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    def rule(self, exchange: Exchange, forward: Forward) -> Reply:
        arrived = time.monotonic()
        reply = forward(exchange)
        progress = next((v for k, v in reply.headers.items() if k.lower() == "x-progress"), "")
        answered = time.monotonic()
        seen = Seen(
            exchange.method, exchange.path, reply.status, arrived, answered, len(reply.body), progress
        )
        with self.lock:
            self.seen.append(seen)
        return reply

    def find(self, method: str, pattern: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method and re.search(pattern, s.path)]


def without_type_filter(exchange: Exchange, forward: Forward) -> None:
    """The kick-off as a server that ignores ``_typeFilter`` would take it: every Observation exported."""
    if exchange.path.endswith("/$export"):
        exchange.query.pop("_typeFilter", None)


def run_command(command: list[str]) -> tuple[float, float, int, list[tuple[float, str]], str]:
    """Start, end, exit status, the stderr lines with the time each arrived, and stdout."""
    began = time.monotonic()
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, str]] = []

    def read_stderr() -> None:
        assert run.stderr is not None
        for line in run.stderr:
            lines.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert run.stdout is not None
        out = run.stdout.read()
        run.wait()
    finally:
        if run.poll() is None:  # the deadline: this run is ours to end
            run.kill()
            run.wait(timeout=30)
    ended = time.monotonic()
    reader.join(timeout=10)
    return began, ended, run.returncode, lines, out


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (proc(5), fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def split(timeline: Timeline, began: float, ended: float, lines: list[tuple[float, str]]) -> dict[str, Any]:
    """The export's phases from the proxy's times, the screening's from the command's own lines."""
    first = min(s.arrived for s in timeline.seen)
    (kickoff,) = timeline.find("GET", r"/Patient/\$export$")
    polls = timeline.find("GET", "/bulk-status/")
    (manifest,) = [p for p in polls if p.status == 200]
    files = [f for f in timeline.find("GET", "/bulk-files/") if f.status == 200]
    (done,) = timeline.find("DELETE", "/bulk-status/")
    said = {
        m.group(1): float(m.group(2).replace(",", "")) for _, text in lines if (m := _DONE_IN.match(text))
    }
    return {
        "kickoff_s": round(kickoff.answered - began, 3),
        "kickoff_detail": {
            "python_start_to_first_request_s": round(first - began, 3),
            "metadata_config_token_s": round(kickoff.arrived - first, 3),
            "export_request_s": round(kickoff.answered - kickoff.arrived, 3),
            "token_requests": len(timeline.find("POST", "/auth/token")),
        },
        "waiting_s": round(manifest.answered - kickoff.answered, 3),
        "polls": len(polls),
        "polls_answered_202": sum(p.status == 202 for p in polls),
        # each poll: seconds after the 202, status, the server's X-Progress
        "poll_times": [(round(p.answered - kickoff.answered, 2), p.status, p.progress) for p in polls],
        "download_s": round(done.arrived - manifest.answered, 3),
        "download_files": len(files),
        "download_bytes": sum(f.size for f in files),
        "download_server_s": round(sum(f.answered - f.arrived for f in files), 3),
        "download_said_s": said.pop("downloading", None),  # the command's own "done in" figure
        "screening_s": round(ended - done.answered, 3),
        "screening_phases_s": said,  # reading, assessing: the command's own "done in" figures
        "total_s": round(ended - began, 3),
    }


def benchmark(base: Path, patients: int, workers: int, type_filter: bool) -> dict[str, Any]:
    report: dict[str, Any] = {
        "patients_asked": patients,
        "workers": workers,
        "type_filter": type_filter,
        "load_average_start": os.getloadavg(),
    }
    keys = Keys.make(base / "keys")
    proxy_port, server_port = free_port(), free_port()
    with ExitStack() as stack:
        proxy = stack.enter_context(proxying(proxy_port, server_port))
        timeline = Timeline()
        proxy.rules += [timeline.rule] if type_filter else [without_type_filter, timeline.rule]
        config = settings(proxy.url, keys)
        config["server_auth"]["token_lifetime"] = TOKEN_SECONDS
        server = start(base / "server", config, port=server_port)
        stack.callback(server.stop)
        report["server_start_s"] = round(server.started_in, 2)

        cpu = cpu_seconds(server.process.pid)
        began = time.monotonic()
        export = write_export(base / "generated", patients, seed=23)
        generated = time.monotonic()
        load(server, export.folder)
        loaded = time.monotonic()
        loaded_cpu = cpu_seconds(server.process.pid)
        resources = sum(len(p.read_bytes().splitlines()) for p in export.folder.glob("*.ndjson"))
        report["population"] = {
            "patients": len(export.patients),
            "resources": resources,
            "generate_s": round(generated - began, 2),
            "load_s": round(loaded - generated, 2),
            "load_patients_per_s": round(len(export.patients) / (loaded - generated), 1),
            "load_server_cpu_s": round(loaded_cpu - cpu, 2),
        }

        out = base / "out"
        command = [sys.executable, "-m", "service.cli", "screen", f"{proxy.url}/Patient", "--out", str(out)]
        command += ["--as-of", AS_OF, "--workers", str(workers), "--progress-every", "5"]
        command += ["--client-id", "neckcheck-screen", "--key", str(keys.rsa_pem), "--kid", "rsa-1"]
        command += ["--scope", "system/*.rds"]  # SEKMET checks its status and file endpoints as on "*"
        began, ended, status, lines, stdout = run_command(command)
        report["command_exit"] = status
        report["command_stderr"] = [text for _, text in lines]
        report["command_stdout"] = stdout.strip()
        if status != 0:
            return report
        report["split"] = split(timeline, began, ended, lines)
        report["split"]["server_cpu_s"] = round(cpu_seconds(server.process.pid) - loaded_cpu, 2)
        summary = json.loads((out / "summary.json").read_text())
        report["screened_patients"] = summary["patients"]
    report["load_average_end"] = os.getloadavg()
    return report


def table(report: dict[str, Any]) -> str:
    pop, s = report["population"], report["split"]
    detail, phases = s["kickoff_detail"], s["screening_phases_s"]
    rows = [
        ("SEKMET start", f"{report['server_start_s']:.2f} s"),
        (
            "generate population",
            f"{pop['patients']:,} patients, {pop['resources']:,} resources, {pop['generate_s']:.2f} s",
        ),
        (
            "load into SEKMET",
            f"{pop['load_s']:.1f} s ({pop['load_patients_per_s']:.1f} patients/s, one transaction each)",
        ),
        (
            "kick-off",
            f"{s['kickoff_s']:.2f} s (start-up {detail['python_start_to_first_request_s']:.2f}, "
            f"metadata+config+token {detail['metadata_config_token_s']:.2f}, $export {detail['export_request_s']:.2f})",
        ),
        ("waiting", f"{s['waiting_s']:.2f} s ({s['polls']} polls, {s['polls_answered_202']} answered 202)"),
        (
            "download",
            f"{s['download_s']:.2f} s ({s['download_bytes'] / 1e6:,.1f} MB in {s['download_files']} files; "
            f"server {s['download_server_s']:.2f} s; the command says {s['download_said_s']} s)",
        ),
        (
            "screening",
            f"{s['screening_s']:.2f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()) + ")",
        ),
        ("total", f"{s['total_s']:.2f} s (SEKMET's CPU meanwhile {s['server_cpu_s']:.2f} s)"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _overdue(signum: int, frame: FrameType | None) -> None:
    raise Overdue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="neckcheck screen --workers (2)")
    parser.add_argument("--deadline", type=float, default=2400.0, help="seconds for everything (2400)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument(
        "--no-type-filter",
        action="store_true",
        help="the proxy drops _typeFilter from the kick-off (SEKMET's filter is quadratic: see the README)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGALRM, _overdue)
    signal.setitimer(signal.ITIMER_REAL, args.deadline)
    try:
        with tempfile.TemporaryDirectory(prefix="neckcheck-bench-remote-") as tmp:
            report = benchmark(Path(tmp), args.patients, args.workers, not args.no_type_filter)
    except Overdue:
        print(f"remote_export: over the deadline of {args.deadline:.0f} s; servers stopped", file=sys.stderr)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    if "split" in report:
        print(table(report))
    return 0 if "split" in report else 1


if __name__ == "__main__":
    sys.exit(main())
