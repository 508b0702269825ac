"""HTTP: the production gunicorn (service/gunicorn.conf.py) under a small, bounded load generator.

gunicorn is started exactly as ``make run`` starts it, with NECKCHECK_INSECURE_DEV=1, a throwaway SQLite
NECKCHECK_DATABASE_URL, NECKCHECK_BIND=127.0.0.1:<free port> and NECKCHECK_WORKERS=2 (threads, timeouts,
max_requests and the access log stay as configured). The load generator is Python threads, one
``http.client`` keep-alive connection each (4 by default), sending the same request back to back for a
fixed time and stopping by themselves. Targets run in alternating passes (healthz, $assess, CDS, healthz,
...) so a noisy moment hits all of them.

A keep-alive connection that the server closed between two requests (gunicorn recycles a worker after
``max_requests``, or a keep-alive timeout) is reopened and the request retried once; that is counted as a
reconnect, not an error, as any HTTP client library would do it. An error is a response other than 200,
a timeout, or a request that failed twice.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stats import summary

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")
RETRYABLE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    http.client.CannotSendRequest,
)


@dataclass(frozen=True)
class Target:
    name: str
    method: str
    path: str
    body: bytes | None
    content_type: str | None


def targets() -> list[Target]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.cds.support import hook_request

    small = (ROOT / "tests" / "fixtures" / "scenarios" / "S7-observations.json").read_bytes()
    hook = json.dumps(hook_request("S7-observations.json")).encode("utf-8")
    return [
        Target("GET /healthz", "GET", "/healthz", None, None),
        Target("POST /fhir/$assess", "POST", "/fhir/$assess", small, "application/fhir+json"),
        Target(
            "POST /cds-services/neckcheck-patient-view",
            "POST",
            "/cds-services/neckcheck-patient-view",
            hook,
            "application/json",
        ),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def worker_pids(master: int) -> set[int]:
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 2)
    except OSError:
        return None
    return None


class Server:
    """The production gunicorn as a context manager; SIGTERM and wait on exit."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self.tmp = tempfile.TemporaryDirectory(prefix="neckcheck-bench-")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(self.tmp.name) / "gunicorn.log"

    def __enter__(self) -> Server:
        env = {
            **os.environ,
            "NECKCHECK_BIND": f"127.0.0.1:{self.port}",
            "NECKCHECK_WORKERS": str(self.workers),
            "NECKCHECK_INSECURE_DEV": "1",
            "NECKCHECK_DATABASE_URL": f"sqlite:///{Path(self.tmp.name) / 'neckcheck.db'}",
            "NECKCHECK_SPOOL_DIR": str(Path(self.tmp.name) / "spool"),  # not the shared default in /tmp
        }
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(GUNICORN), "--config", "service/gunicorn.conf.py", "service.app:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,  # the access log: written by the workers, as in production
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200 and len(worker_pids(self.proc.pid)) >= self.workers:
                    conn.close()
                    break
                conn.close()
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"gunicorn did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.tmp.cleanup()


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    reconnects: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    first_error: str | None = None


def _client(port: int, target: Target, start: threading.Barrier, stop_at: list[float], tally: _Tally) -> None:
    headers = {"Content-Type": target.content_type} if target.content_type else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    perf = time.perf_counter
    start.wait()
    end = stop_at[0]
    while True:
        t0 = perf()
        if t0 >= end:
            break
        for attempt in (1, 2):
            try:
                conn.request(target.method, target.path, body=target.body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
                if status != 200 and tally.first_error is None:
                    tally.first_error = f"HTTP {status}: {payload[:300].decode('utf-8', 'replace')}"
                if response.will_close:
                    conn.close()
                break
            except RETRYABLE as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                if attempt == 1:
                    tally.reconnects += 1
                    t0 = perf()
                    continue
                status = -1
                tally.first_error = tally.first_error or repr(exc)
            except OSError as exc:  # timeouts, refused connections
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                status = -1
                tally.first_error = tally.first_error or repr(exc)
                break
        elapsed = perf() - t0
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status == 200:
            tally.latencies.append(elapsed)
        else:
            tally.errors += 1
    conn.close()


def load(port: int, target: Target, seconds: float, connections: int) -> list[_Tally]:
    tallies = [_Tally() for _ in range(connections)]
    start = threading.Barrier(connections + 1)
    stop_at = [0.0]
    threads = [
        threading.Thread(target=_client, args=(port, target, start, stop_at, t), daemon=True) for t in tallies
    ]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    start.wait()
    for t in threads:
        t.join(timeout=seconds + 30)
    return tallies


def error_lines(text: str, limit: int = 12) -> dict[str, int]:
    """Distinct warnings and errors of the server's log (JSON lines, or gunicorn's own), with counts."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key = None
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if str(record.get("level", "")).lower() in ("warning", "error", "critical"):
                # the exception line ("sqlalchemy.exc.IntegrityError: ..."), not SQL parameters or hints
                exc = [
                    x
                    for x in str(record.get("exc", "")).splitlines()
                    if x
                    and x[0] not in " (["
                    and ("Error" in x.split(":")[0] or "Exception" in x.split(":")[0])
                ]
                key = f"{record.get('level')} {record.get('logger')}: {record.get('msg')}"
                key += f" | {exc[-1][:200]}" if exc else ""
        elif "[ERROR]" in line or "[CRITICAL]" in line or "[WARNING]" in line:
            key = line.split("] ", 2)[-1]
        if key is not None and "NECKCHECK_INSECURE_DEV" not in key:
            key = key[:300]
            if key in found or len(found) < limit:
                found[key] = found.get(key, 0) + 1
    return found


def check_responses(port: int, target_list: list[Target]) -> dict[str, str]:
    """One request per target, its body checked, so a fast stream of errors cannot pass for speed."""
    out = {}
    for t in target_list:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(
            t.method, t.path, body=t.body, headers={"Content-Type": t.content_type} if t.content_type else {}
        )
        r = conn.getresponse()
        body = json.loads(r.read())
        conn.close()
        if t.path == "/healthz":
            ok = r.status == 200 and body.get("status") == "ok"
        elif t.path.startswith("/fhir"):
            ok = r.status == 200 and body.get("resourceType") == "Bundle" and bool(body.get("entry"))
        else:
            ok = r.status == 200 and bool(body.get("cards"))
        out[t.name] = "ok" if ok else f"unexpected: HTTP {r.status} {str(body)[:200]}"
    return out


def run_http(
    seconds: float = 10.0, passes: int = 5, connections: int = 4, warmup: float = 1.0, log: Any = print
) -> dict[str, Any]:
    target_list = targets()
    per_pass = seconds / passes
    with Server(workers=2) as server:
        assert server.proc is not None
        master = server.proc.pid
        pids_seen = set(worker_pids(master))
        rss_start = {pid: rss_mb(pid) for pid in pids_seen}
        sanity = check_responses(server.port, target_list)
        load_before = os.getloadavg()
        for t in target_list:  # warm every endpoint on every worker; not recorded
            load(server.port, t, warmup, connections)
        tallies: dict[str, list[_Tally]] = {t.name: [] for t in target_list}
        measured: dict[str, float] = {t.name: 0.0 for t in target_list}
        for p in range(passes):
            for t in target_list:
                t0 = time.perf_counter()
                tallies[t.name] += load(server.port, t, per_pass, connections)
                measured[t.name] += time.perf_counter() - t0
                pids_seen |= worker_pids(master)
                log(
                    f"  pass {p + 1}/{passes} {t.name}: {sum(len(x.latencies) for x in tallies[t.name])} ok so far"
                )
        live = worker_pids(master)
        rss_end = {pid: rss_mb(pid) for pid in live}
        server.log.flush()
        server_errors = error_lines(server.log_path.read_text(errors="replace"))
    results: dict[str, Any] = {
        "connections": connections,
        "seconds_per_target": seconds,
        "passes": passes,
        "gunicorn_workers": 2,
        "sanity": sanity,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "worker_pids_seen": len(pids_seen),
        "workers_recycled": max(0, len(pids_seen) - 2),
        "worker_rss_mb_start": sorted(v for v in rss_start.values() if v is not None),
        "worker_rss_mb_end": sorted(v for v in rss_end.values() if v is not None),
        "server_error_log": server_errors,
        "targets": {},
    }
    for name, ts in tallies.items():
        latencies = [x for t in ts for x in t.latencies]
        statuses: dict[str, int] = {}
        for t in ts:
            for k, v in t.statuses.items():
                statuses[str(k)] = statuses.get(str(k), 0) + v
        results["targets"][name] = {
            "requests_ok": len(latencies),
            "errors": sum(t.errors for t in ts),
            "reconnects": sum(t.reconnects for t in ts),
            "statuses": statuses,
            "first_error": next((t.first_error for t in ts if t.first_error), None),
            "seconds": round(measured[name], 3),
            "req_per_s": round(len(latencies) / measured[name], 1),
            "latency": summary(latencies),
        }
    return results
