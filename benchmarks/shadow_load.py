"""Shadow mode's cost to the live answers (issue 24): the CDS p99 at half capacity, with and without it.

``make bench`` runs this after the HTTP phase; alone (about 50 s, or 20 s with ``--quick``)::

    .venv/bin/python -m benchmarks.shadow_load [--quick]

Two neckcheck servers on SQLite, each set up as the HTTP phase's (the production gunicorn, 2 sync workers),
run side by side for the whole phase; one has ``NECKCHECK_SHADOW_RULES`` naming a candidate table under
which the bench's chart gets another result, so every call it shadows is assessed again, compared, counted
as different and stored: the most work shadow mode does for one call.

1. Capacity: patient-view closed-loop with wrk at 4 connections, as the HTTP passes load it, on the plain
   server; the same on the shadowed one for information (at saturation its candidate's queue sheds).
2. Half the plain server's capacity is offered to each server in turn, in short alternating passes (the
   order flipped every pass, so a noisy moment of the shared machine hits both alike), as Poisson arrivals
   over 2 connections (wrk.lua's ``BENCH_RATE``). Two, one per worker: a sync worker that accepts a
   connection waits on it for its request, and wrk connects right after each answer and then waits out the
   delay on the open connection; with more connections than workers a worker would sit on an idle one
   while a sent request waited in the backlog, a latency of the client's making. So p99 here is the
   answer's own time (a request sent while both connections wait is sent late: queueing for a busy worker
   is not in it), which is what shadow mode's work beside the worker (its collector thread, the candidate's
   child process on the same cores) can move.

The p99 of each side is taken per pass and over every paced request of its passes together (wrk.lua's
histogram); the target judges the median of the pass-by-pass ratios, which one stalled pass cannot carry.
The candidate's counters are read from the shadowed server's /metrics before and after the paced passes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.http_load import (
    PATIENT_VIEW,
    Server,
    WrkRun,
    WrkRunner,
    check_responses,
    ensure_wrk,
    error_lines,
    merge_runs,
    metric_samples,
    neckcheck_server,
    targets,
)
from benchmarks.stats import percentile

CAPACITY_CONNECTIONS = 4  # as the HTTP passes
PACED_CONNECTIONS = 2  # one per worker (the module's docstring says why)
CANDIDATE_NUMBNESS_DAYS = 21  # the live table says 14; the bench's chart has numbness for 20 days
HOOK_ROUTE = "/cds-services/<service_id>"


def candidate_table(directory: Path, numbness_days: int = CANDIDATE_NUMBNESS_DAYS) -> Path:
    """The live table with persistent-numbness moved from more than 14 days to more than 21 (as
    tests/cli/test_rules_diff.py edits it): the bench's patient-view chart no longer fires it. With 14,
    the live table itself: every call is compared as the same, and nothing is stored."""
    from service.rules.versions import default_table_file

    raw = json.loads(default_table_file().read_text(encoding="utf-8"))
    rule = next(r for r in raw["rules"] if r["id"] == "persistent-numbness")
    duration = next(c for c in rule["when"]["all"] if c.get("fact") == "facial-numbness-days")
    duration["greaterThan"] = numbness_days
    path = directory / "candidate.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def shadow_counters(port: int) -> dict[str, float]:
    """The candidate's counters and the hook answers, as the server's /metrics sums them over its workers."""
    out: dict[str, float] = {}
    for name, labels, value in metric_samples(port):
        if name == "neckcheck_shadow_evaluations_total":
            out[labels["outcome"]] = out.get(labels["outcome"], 0) + value
        elif name == "neckcheck_shadow_shed_total":
            out["shed"] = out.get("shed", 0) + value
        elif name == "neckcheck_http_requests_total" and labels.get("route") == HOOK_ROUTE:
            out["answered"] = out.get("answered", 0) + value
    return out


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    return {k: int(after[k] - before.get(k, 0)) for k in sorted(after)}


def _pooled(runs: list[WrkRun]) -> dict[str, Any]:
    """The passes of one side together: req/s over the measured time, percentiles over every request."""
    merged = merge_runs(runs)
    counts: dict[int, int] = {}
    for r in runs:
        for us, n in r.histogram.items():
            counts[us] = counts.get(us, 0) + n
    ms = [us / 1000 for us, n in sorted(counts.items()) for _ in range(n)]
    return {
        "req_per_s": merged["req_per_s"],
        "requests": merged["requests"],
        "errors": merged["errors"],
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": merged["max_ms"],
        "p99_per_pass_ms": [round(r.p99_ms, 3) for r in runs],
        "req_per_s_per_pass": [round(r.requests / r.seconds, 1) for r in runs],
    }


def run(
    seconds: int = 3,
    passes: int = 6,
    warmup: int = 1,
    capacity_seconds: int = 2,
    numbness_days: int = CANDIDATE_NUMBNESS_DAYS,
    log: Any = print,
) -> dict[str, Any]:
    """The phase; ``seconds`` per paced pass and server (about 2 x passes x seconds + 20 s in all)."""
    started = time.perf_counter()
    wrk = ensure_wrk()
    (pv,) = [t for t in targets() if t.name == PATIENT_VIEW]
    with tempfile.TemporaryDirectory(prefix="neckcheck-bench-shadow-") as tmp:
        plain = neckcheck_server(None, "shadow-off")
        shadowed = neckcheck_server(None, "shadow-on")
        shadowed.env["NECKCHECK_SHADOW_RULES"] = str(candidate_table(Path(tmp), numbness_days))
        with plain, shadowed:
            servers: dict[str, Server] = {"without": plain, "with": shadowed}
            runner = WrkRunner(wrk, CAPACITY_CONNECTIONS, Path(tmp))
            sanity = {k: check_responses({False: s.port}, [pv])[PATIENT_VIEW] for k, s in servers.items()}
            for s in servers.values():
                runner.run(s.port, pv, warmup)
            capacity: dict[str, list[WrkRun]] = {k: [] for k in servers}
            at_start = shadow_counters(shadowed.port)
            for _ in range(2):
                for k, s in servers.items():
                    capacity[k].append(runner.run(s.port, pv, capacity_seconds))
            time.sleep(0.5)  # the candidate's queue drains
            before = shadow_counters(shadowed.port)
            full = {k: merge_runs(v)["req_per_s"] for k, v in capacity.items()}
            rate = full["without"] / 2
            log(
                f"  capacity {full['without']:.0f} req/s (with shadow {full['with']:.0f}); offering {rate:.0f}"
            )
            load_before = os.getloadavg()
            paced: dict[str, list[WrkRun]] = {k: [] for k in servers}
            for p in range(passes):
                for k in list(servers) if p % 2 == 0 else reversed(list(servers)):
                    paced[k].append(
                        runner.run(servers[k].port, pv, seconds, rate, PACED_CONNECTIONS, histogram=True)
                    )
                log(f"  shadow: pass {p + 1}/{passes} done")
            time.sleep(0.5)
            after = shadow_counters(shadowed.port)
            load_after = os.getloadavg()
            for s in servers.values():
                s.stop()  # its log is read before the server's directory goes
            logs = {k: error_lines(s.log_path.read_text(errors="replace")) for k, s in servers.items()}
    sides = {k: _pooled(v) for k, v in paced.items()}
    without, with_ = sides["without"]["p99_ms"], sides["with"]["p99_ms"]
    pairs = [
        round(w / o, 3)
        for w, o in zip(sides["with"]["p99_per_pass_ms"], sides["without"]["p99_per_pass_ms"], strict=True)
    ]
    return {
        "what": (
            f"patient-view on SQLite, 2 sync workers; capacity closed-loop at {CAPACITY_CONNECTIONS} "
            f"connections, then half of it offered (Poisson) over {PACED_CONNECTIONS} connections to a plain "
            "server and to one shadowing every call under a candidate that moves persistent-numbness "
            f"to > {numbness_days} days, alternating passes"
        ),
        "seconds_per_pass": seconds,
        "passes": passes,
        "sanity": sanity,
        "capacity_req_per_s": full["without"],
        "capacity_with_shadow_req_per_s": full["with"],
        "offered_req_per_s": round(rate, 1),
        "without": sides["without"],
        "with": sides["with"],
        # the target's value: the median of the pass-by-pass ratios (each pair ran back to back, so a stall
        # of the shared machine spoils one pair, where in the pooled p99 it counts for one side only)
        "p99_ratio": round(statistics.median(pairs), 3),
        "p99_ratio_per_pass": pairs,
        "p99_ratio_pooled": round(with_ / without, 3),
        "shadow_at_capacity": _delta(at_start, before),
        "shadow_paced": _delta(before, after),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "server_error_log": logs,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 paced passes of 2 s per server")
    parser.add_argument(
        "--same-result",
        action="store_true",
        help="a candidate equal to the live table: every call compared, none different, nothing stored",
    )
    args = parser.parse_args(argv)
    days = 14 if args.same_result else CANDIDATE_NUMBNESS_DAYS
    result = run(seconds=2, passes=2, numbness_days=days) if args.quick else run(numbness_days=days)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
