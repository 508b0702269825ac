"""HTTP load on the production gunicorn: neckcheck (SQLite, then PostgreSQL) beside a trivial peer.

The load generator is ``wrk`` (Debian's package, installed when missing) with benchmarks/wrk.lua: C and
epoll, so it is not the bottleneck it would be in Python (``compare_generators`` measures both against
/healthz once per run). Each target gets warm-up seconds first, then alternating passes (peer, healthz,
$assess, patient-view, order-sign, feedback, peer, ...) so a noisy moment hits all of them alike.

An error is any response other than 200, or a connect/read/write error or timeout that wrk counts. After
each neckcheck server has been stopped (SIGTERM: whatever it queued is flushed), the rows of its database
are counted against what the run was answered: one card row per hook answer with a card, one audit row
per assessment ($assess and hook answers), one feedback row per feedback item.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import bundles

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
WRK_SCRIPT = HERE / "wrk.lua"
RETRYABLE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    http.client.CannotSendRequest,
)
PEER = "peer: trivial patient-view"
HEALTHZ = "GET /healthz"
ASSESS = "POST /fhir/$assess"
PATIENT_VIEW = "POST /cds-services/neckcheck-patient-view"
ORDER_SIGN = "POST /cds-services/neckcheck-order-sign"
FEEDBACK = "POST /cds-services/neckcheck-patient-view/feedback"
FEEDBACK_ITEMS = 1  # items per feedback request (bundles.feedback_body)


@dataclass(frozen=True)
class Target:
    name: str
    method: str
    path: str
    body: bytes | None
    content_type: str | None
    peer: bool = False  # served by the trivial peer, not neckcheck


def targets() -> list[Target]:
    """The requests of the load test; hook charts recorded now, since the server assesses them at its clock."""
    small = bundles.SMALL.read_bytes()
    recorded = dt.datetime.now(dt.UTC)
    return [
        Target(
            PEER,
            "POST",
            "/cds-services/peer-patient-view",
            bundles.hook_body("patient-view", recorded),
            "application/json",
            peer=True,
        ),
        Target(HEALTHZ, "GET", "/healthz", None, None),
        Target(ASSESS, "POST", "/fhir/$assess", small, "application/fhir+json"),
        Target(
            PATIENT_VIEW,
            "POST",
            "/cds-services/neckcheck-patient-view",
            bundles.hook_body("patient-view", recorded),
            "application/json",
        ),
        Target(
            ORDER_SIGN,
            "POST",
            "/cds-services/neckcheck-order-sign",
            bundles.hook_body("order-sign", recorded),
            "application/json",
        ),
        Target(
            FEEDBACK,
            "POST",
            "/cds-services/neckcheck-patient-view/feedback",
            bundles.feedback_body(),
            "application/json",
        ),
    ]


def ensure_wrk() -> str:
    """The wrk binary, installing Debian's ``wrk`` package first if needed."""
    return ensure_debian_tool("wrk", "wrk")


def ensure_debian_tool(command: str, package: str) -> str:
    """``command``'s path, installing Debian's ``package`` first if needed (the tests' apt_install)."""
    found = shutil.which(command)
    if found:
        return found
    from tests.debian import apt_install  # ROOT is on sys.path: this module came from benchmarks/

    apt_install(package)
    found = shutil.which(command)
    if found is None:
        raise RuntimeError(f"apt-get installed {package} but {command} is not on PATH")
    return found


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
    """gunicorn as a context manager: started, waited for (/healthz and every worker), SIGTERM on exit."""

    def __init__(
        self, argv: list[str], env: dict[str, str], name: str, workers: int = 2, threads: int = 1
    ) -> None:
        """2 sync workers (one thread each) for every app, as issue 10 measured and set its targets: with
        more threads per worker, a request's latency also holds the other thread's turns at the GIL."""
        self.workers = workers
        self.name = name
        self.tmp = tempfile.TemporaryDirectory(prefix=f"neckcheck-bench-{name}-")
        self.port = free_port()
        self.argv = argv
        self.env = {
            **os.environ,
            **env,
            "NECKCHECK_BIND": f"127.0.0.1:{self.port}",
            "NECKCHECK_WORKERS": str(workers),
            "NECKCHECK_THREADS": str(threads),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(self.tmp.name) / "gunicorn.log"

    @property
    def dir(self) -> Path:
        return Path(self.tmp.name)

    def __enter__(self) -> Server:
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,  # the request log: written by the workers, as in production
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
                self.stop()
                text = self.log_path.read_text(errors="replace")[-3000:]
                self.tmp.cleanup()
                raise RuntimeError(f"gunicorn ({self.name}) did not start:\n{text}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        """SIGTERM and wait: gunicorn lets the workers finish (and flush what they queued)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.tmp.cleanup()


def neckcheck_server(database_url: str | None, name: str) -> Server:
    """The production gunicorn exactly as `make run` starts it, on a throwaway database."""
    argv = [str(GUNICORN), "--config", "service/gunicorn.conf.py", "service.app:create_app()"]
    server = Server(argv, {"NECKCHECK_INSECURE_DEV": "1"}, name)
    server.env["NECKCHECK_DATABASE_URL"] = database_url or f"sqlite:///{server.dir / 'neckcheck.db'}"
    server.env["NECKCHECK_SPOOL_DIR"] = str(server.dir / "spool")  # not the shared default in /tmp
    server.env["NECKCHECK_AUTO_MIGRATE"] = "1"
    return server


def peer_server() -> Server:
    """The trivial peer under the same gunicorn settings (benchmarks/peer_gunicorn.conf.py)."""
    argv = [str(GUNICORN), "--config", "benchmarks/peer_gunicorn.conf.py", "benchmarks.peer:app"]
    return Server(argv, {}, "peer")


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


def check_responses(ports: dict[bool, int], target_list: list[Target]) -> dict[str, str]:
    """One request per target, its body checked, so a fast stream of errors cannot pass for speed."""
    out = {}
    for n, t in enumerate(target_list):
        conn = http.client.HTTPConnection("127.0.0.1", ports[t.peer], timeout=10)
        # a marker value of its own: two hooks sent the same input in the same second give the same card id
        body = t.body.replace(bundles.MARKER.encode(), f"check{n}".encode()) if t.body else None
        conn.request(
            t.method, t.path, body=body, headers={"Content-Type": t.content_type} if t.content_type else {}
        )
        r = conn.getresponse()
        answer = json.loads(r.read())
        conn.close()
        if t.path == "/healthz":
            ok = r.status == 200 and answer.get("status") == "ok"
        elif t.path.startswith("/fhir"):
            ok = r.status == 200 and answer.get("resourceType") == "Bundle" and bool(answer.get("entry"))
        elif t.path.endswith("/feedback"):
            ok = r.status == 200 and answer == {}
        else:
            ok = r.status == 200 and bool(answer.get("cards"))
        out[t.name] = "ok" if ok else f"unexpected: HTTP {r.status} {str(answer)[:200]}"
    return out


@dataclass
class WrkRun:
    """What wrk reported for one run of one target."""

    requests: int
    seconds: float
    errors: int
    cards: int
    statuses: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    # latency in microseconds -> requests that took it (only when asked for: ``histogram=True``)
    histogram: dict[int, int] = field(default_factory=dict)


@dataclass
class WrkRunner:
    wrk: str
    connections: int
    tmp: Path
    runs: int = 0
    bodies: dict[str, Path] = field(default_factory=dict)

    def run(
        self,
        port: int,
        target: Target,
        seconds: int,
        rate: float | None = None,
        connections: int | None = None,
        histogram: bool = False,
    ) -> WrkRun:
        """One wrk run; ``rate``: requests/s offered (wrk.lua's paced arrivals) instead of closed-loop."""
        self.runs += 1
        body = ""
        if target.body is not None:
            if target.name not in self.bodies:
                self.bodies[target.name] = self.tmp / f"body-{len(self.bodies)}.json"
                self.bodies[target.name].write_bytes(target.body)
            body = str(self.bodies[target.name])
        env = {
            **os.environ,
            "BENCH_METHOD": target.method,
            "BENCH_BODY": body,
            "BENCH_CONTENT_TYPE": target.content_type or "",
            "BENCH_RUN": str(self.runs),
            "BENCH_RATE": f"{rate:.3f}" if rate else "",
            "BENCH_HISTOGRAM": "1" if histogram else "",
        }
        argv = [
            self.wrk,
            "-t1",
            f"-c{connections or self.connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(WRK_SCRIPT),
        ]
        done = subprocess.run(
            [*argv, f"http://127.0.0.1:{port}{target.path}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if line is None:
            raise RuntimeError(
                f"wrk gave no result (exit {done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}"
            )
        r = json.loads(line.removeprefix("BENCH_JSON "))
        statuses = {str(k): int(v) for k, v in r["statuses"].items()}
        errors = sum(int(r[k]) for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout"))
        errors += sum(v for k, v in statuses.items() if k != "200")
        return WrkRun(
            requests=int(r["requests"]),
            seconds=r["duration_us"] / 1e6,
            errors=errors,
            cards=int(r["cards"]),
            statuses=statuses,
            p50_ms=r["p50_us"] / 1000,
            p95_ms=r["p95_us"] / 1000,
            p99_ms=r["p99_us"] / 1000,
            max_ms=r["max_us"] / 1000,
            histogram={int(us): int(n) for us, n in r.get("histogram_us", [])},
        )


def merge_runs(runs: list[WrkRun]) -> dict[str, Any]:
    """One target's passes together: req/s over the measured time; latency percentiles as the worst pass's.

    wrk reports percentiles per run, not its samples, so the p50/p95/p99 of several passes are given as
    the request-weighted mean of the passes' values (``*_ms``) and the worst pass's (``*_worst_ms``).
    """
    requests = sum(r.requests for r in runs)
    seconds = sum(r.seconds for r in runs)
    statuses: dict[str, int] = {}
    for r in runs:
        for k, v in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    out: dict[str, Any] = {
        "requests": requests,
        "requests_ok": statuses.get("200", 0),
        "seconds": round(seconds, 3),
        "req_per_s": round(statuses.get("200", 0) / seconds, 1) if seconds else 0.0,
        "errors": sum(r.errors for r in runs),
        "statuses": statuses,
        "cards": sum(r.cards for r in runs),
        "passes": len(runs),
    }
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        values = [getattr(r, key) for r in runs]
        weights = [r.requests for r in runs]
        out[key] = round(sum(v * w for v, w in zip(values, weights, strict=True)) / max(1, sum(weights)), 3)
        out[key.replace("_ms", "_worst_ms")] = round(max(values), 3)
    out["max_ms"] = round(max(r.max_ms for r in runs), 3)
    return out


def compare_generators(runner: WrkRunner, port: int, seconds: int) -> dict[str, Any]:
    """/healthz with the old Python client (threads + http.client) and with wrk, same connections.

    Req/s say which one gets more out of the server; the client's own CPU time per request says how much
    of the machine (2 cores shared with the server) each generator takes for itself.
    """
    healthz = Target(HEALTHZ, "GET", "/healthz", None, None)
    cpu = time.process_time()
    tallies = load(port, healthz, seconds, runner.connections)
    python_cpu = time.process_time() - cpu
    python_n = sum(len(t.latencies) for t in tallies)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk = runner.run(port, healthz, seconds)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    python_rate, wrk_rate = python_n / seconds, wrk.requests / wrk.seconds
    return {
        "what": f"GET /healthz, {runner.connections} keep-alive connections, {seconds} s each",
        "python_threads_req_per_s": round(python_rate, 1),
        "wrk_req_per_s": round(wrk_rate, 1),
        "wrk_over_python": round(wrk_rate / python_rate, 2) if python_rate else None,
        "python_client_cpu_us_per_request": round(python_cpu / max(1, python_n) * 1e6, 1),
        "wrk_client_cpu_us_per_request": round(wrk_cpu / max(1, wrk.requests) * 1e6, 1),
    }


def answered(port: int) -> dict[str, int]:
    """200 answers per route, as the server counted them (/metrics, summed over the workers).

    Exact where the client's count is not: wrk does not count the requests in flight when it stops, which
    the server still answers (and stores).
    """
    counts: dict[str, int] = {}
    for name, labels, value in metric_samples(port):
        if name == "neckcheck_http_requests_total" and labels.get("status") == "200":
            counts[labels["route"]] = counts.get(labels["route"], 0) + int(value)
    return counts


def metric_samples(port: int) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of the server's /metrics (summed over its workers) as (name, labels, value)."""
    from prometheus_client.parser import text_string_to_metric_families

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode("utf-8")
    conn.close()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def count_rows(database_url: str) -> dict[str, int]:
    """Rows in the card, feedback and audit tables (service/storage/schema.py) of a stopped server."""
    from sqlalchemy import create_engine, func, select

    from service.storage.schema import audit, cards, feedback

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in (("cards", cards), ("feedback", feedback), ("audit", audit))
            }
    finally:
        engine.dispose()


@contextmanager
def _postgres() -> Iterator[str]:
    """A real PostgreSQL (tests/postgres.py's Cluster: Debian's server, 127.0.0.1, a temporary directory)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.postgres import Cluster

    cluster = Cluster()
    try:
        cluster.start()
        yield cluster.create_database("neckcheck_bench")
    finally:
        cluster.remove()


def _phase(
    name: str,
    database_url: str,
    peer: Server,
    runner: WrkRunner,
    target_list: list[Target],
    seconds: int,
    passes: int,
    warmup: int,
    compare: bool,
    log: Any,
) -> dict[str, Any]:
    """One neckcheck server on one database, loaded beside the (already running) peer."""
    server = neckcheck_server(None if database_url == "sqlite" else database_url, name)
    database_url = server.env["NECKCHECK_DATABASE_URL"]
    sent: dict[str, list[WrkRun]] = {t.name: [] for t in target_list}  # every run, warm-ups included
    measured: dict[str, list[WrkRun]] = {t.name: [] for t in target_list}
    with server:
        assert server.proc is not None
        ports = {True: peer.port, False: server.port}
        master = server.proc.pid
        pids_seen = set(worker_pids(master))
        rss_start = [rss_mb(p) for p in sorted(pids_seen)]
        sanity = check_responses(ports, target_list)
        generators = compare_generators(runner, server.port, 3) if compare else None
        load_before = os.getloadavg()
        for t in target_list:  # warm every endpoint on every worker; not measured (but counted)
            sent[t.name].append(runner.run(ports[t.peer], t, warmup))
        for p in range(passes):
            for t in target_list:
                run = runner.run(ports[t.peer], t, seconds)
                sent[t.name].append(run)
                measured[t.name].append(run)
                pids_seen |= worker_pids(master)
            log(f"  {name}: pass {p + 1}/{passes} done")
        rss_end = [rss_mb(p) for p in sorted(worker_pids(master))]
        time.sleep(0.5)  # the requests in flight when the last wrk stopped
        served = answered(server.port)
        server.stop()  # SIGTERM: the workers finish and flush before the rows are counted
        server_errors = error_lines(server.log_path.read_text(errors="replace"))
        try:
            rows: dict[str, Any] = count_rows(database_url)
        except Exception as exc:
            rows = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    hooks = [PATIENT_VIEW, ORDER_SIGN]
    hook_answers = served.get("/cds-services/<service_id>", 0)
    # every hook answer of this load carries a card (wrk checks each 200 for one): one card row each
    client_ok = sum(r.statuses.get("200", 0) for n in hooks for r in sent[n])
    client_cards = sum(r.cards for n in hooks for r in sent[n])
    expected = {
        "cards": hook_answers if client_cards == client_ok else client_cards,
        "feedback": served.get("/cds-services/<service_id>/feedback", 0) * FEEDBACK_ITEMS,
        "audit": served.get("/fhir/$assess", 0) + hook_answers,
    }
    return {
        "database": "PostgreSQL" if database_url.startswith("postgresql") else "SQLite",
        "sanity": sanity,
        "generators": generators,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "workers_recycled": max(0, len(pids_seen) - 2),
        "worker_rss_mb_start": rss_start,
        "worker_rss_mb_end": rss_end,
        "server_error_log": server_errors,
        "rows": rows,
        "rows_expected": expected,
        "targets": {n: merge_runs(runs) for n, runs in measured.items()},
    }


def run_http(
    seconds: int = 2,
    passes: int = 5,
    connections: int = 4,
    warmup: int = 1,
    postgres: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Both databases, each beside the peer; ``seconds`` per pass and target."""
    wrk = ensure_wrk()
    target_list = targets()
    results: dict[str, Any] = {
        "generator": "wrk (benchmarks/wrk.lua), 1 thread",
        "connections": connections,
        "seconds_per_pass": seconds,
        "passes": passes,
        "warmup_seconds": warmup,
        "gunicorn": "service/gunicorn.conf.py for both apps (benchmarks/peer_gunicorn.conf.py reads it)",
        "phases": {},
    }
    with tempfile.TemporaryDirectory(prefix="neckcheck-bench-wrk-") as tmp, peer_server() as peer:
        runner = WrkRunner(wrk, connections, Path(tmp))
        args = (peer, runner, target_list, seconds, passes, warmup)
        log("  SQLite:")
        results["phases"]["sqlite"] = _phase("sqlite", "sqlite", *args, compare=True, log=log)
        if postgres:
            log("  PostgreSQL (a throwaway cluster):")
            try:
                with _postgres() as url:
                    results["phases"]["postgresql"] = _phase("postgresql", url, *args, compare=False, log=log)
            except Exception as exc:
                results["phases"]["postgresql"] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    return results
