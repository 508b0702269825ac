"""`make bench`: every neckcheck benchmark in one bounded run -> results.json, results.png, a table.

    .venv/bin/python benchmarks/run.py            # the full run (about 2-3 minutes)
    .venv/bin/python benchmarks/run.py --quick    # a smoke run with a fraction of the budgets

See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# import the siblings as the ``benchmarks`` package; benchmarks/ itself must not shadow the stdlib
# (benchmarks/profile.py would hide the stdlib ``profile`` module)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from benchmarks import bundles, http_load, inprocess, shadow_load  # noqa: E402

RESULTS_JSON = HERE / "results.json"
RESULTS_PNG = HERE / "results.png"
DATABASES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def log(msg: str) -> None:
    print(msg, flush=True)


def audit_record_cost(n: int = 200) -> dict[str, Any]:
    """Informational: one synchronous audit write, alone, on SQLite (what the background writer keeps off
    the request path: $assess and CDS calls only queue the record).

    Not a target; a changed storage API is reported, not a failed run.
    """
    import statistics
    import tempfile

    try:
        from service.assess import Assessor
        from service.intake.json_body import parse_json
        from service.storage.audit import AuditEvent
        from service.storage.database import make_engine, upgrade
        from service.storage.records import KINDS
        from service.storage.spool import Spool
        from service.storage.writer import RecordWriter

        with tempfile.TemporaryDirectory(prefix="neckcheck-bench-audit-") as tmp:
            engine = make_engine(f"sqlite:///{tmp}/audit.db")
            upgrade(engine)
            writer = RecordWriter(engine, Spool(Path(tmp) / "spool", max_bytes=2**20), KINDS)
            body = parse_json(bundles.SMALL.read_bytes())
            assessment = Assessor.load().run(body)
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                writer.store([AuditEvent.of(assessment, body, "http", "bench")])
                samples.append(time.perf_counter() - t0)
            engine.dispose()
        ms = sorted(s * 1000 for s in samples)
        return {
            "what": "AuditEvent.of + RecordWriter.store on a fresh SQLite file, one thread, small Bundle",
            "n": n,
            "median_ms": statistics.median(ms),
            "p95_ms": ms[int(0.95 * len(ms)) - 1],
        }
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def journal_cost(rounds: int) -> dict[str, Any]:
    """Informational: what the audit journal adds to each answer (benchmarks/journal.py): the append per
    record with the default sync interval, and with NECKCHECK_JOURNAL_SYNC_MS=0 (an fdatasync each)."""
    try:
        from benchmarks.journal import measure

        return measure(Path(tempfile.gettempdir()), rounds)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def memory(iterations: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", str(iterations)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _target(
    name: str, value: float | None, op: str, limit: float, unit: str, kind: str = "target", detail: str = ""
) -> dict[str, Any]:
    ok = value is not None and (value <= limit if op == "<=" else value >= limit)
    return {
        "name": name,
        "kind": kind,
        "value": None if value is None else round(value, 3),
        "op": op,
        "limit": limit,
        "unit": unit,
        "status": "PASS" if ok else "MISS",
        "detail": detail,
    }


def screen_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's targets from benchmarks/screen.py's report (population screening, same run)."""
    sizes = sorted(int(k.split("_")[1]) for k in report if k.startswith("local_") and k[6:].isdigit())
    if len(sizes) < 2:
        return [_target("screen: benchmark", None, ">=", 1, "", detail=str(report.get("error", ""))[:200])]
    small, large = report[f"local_{sizes[0]}"], report[f"local_{sizes[-1]}"]
    spark = report.get(f"spark_local2_{sizes[0]}", {})
    sample = report.get("sample_vs_assess", {})
    return [
        _target(
            f"screen: local engine, {large.get('patients', 0):,} patients, 2 workers",
            large.get("patients_per_s"),
            ">=",
            2000,
            "patients/s",
            detail=f"{large.get('seconds')} s, {large.get('resources', 0):,} resources",
        ),
        _target(
            f"screen: peak RSS, {large.get('patients', 0):,} patients (largest process)",
            large.get("peak_rss_mb_largest_process"),
            "<=",
            300,
            "MB",
            detail=f"all processes together {large.get('peak_rss_mb_all_processes')} MB",
        ),
        _target(
            f"screen: RSS growth {sizes[0]:,} -> {sizes[-1]:,} patients",
            report.get("rss_growth_largest_process"),
            "<=",
            1.5,
            "x",
            detail=f"{small.get('peak_rss_mb_largest_process')} -> {large.get('peak_rss_mb_largest_process')} MB",
        ),
        _target(
            "screen: Spark local[2] results identical to the local engine's (1 = yes)",
            1.0 if spark.get("identical_results") else 0.0,
            ">=",
            1,
            "",
            detail=f"Spark {spark.get('seconds')} s vs local {small.get('seconds')} s, {sizes[0]:,} patients",
        ),
        _target(
            "screen: patients of a 1,000 sample differing from $assess",
            sample.get("different"),
            "<=",
            0,
            "",
            detail=f"{sample.get('compared')} compared",
        ),
    ]


def shadow_target(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 24: shadow mode must not move the CDS p99 by more than 10 % at half capacity
    (benchmarks/shadow_load.py). No value unless the candidate was seen to run on the paced calls."""
    name = "shadow mode: CDS p99 at half capacity, with / without"
    if "p99_ratio" not in report:
        return _target(name, None, "<=", 1.10, "x", detail=str(report.get("error", ""))[:200])
    evaluated = report["shadow_paced"]
    ran = sum(evaluated.get(k, 0) for k in ("same", "different")) > 0
    on, off = report["with"], report["without"]
    return _target(
        name,
        report["p99_ratio"] if ran else None,
        "<=",
        1.10,
        "x",
        detail=f"median of {report['passes']} pass ratios; pooled p99 {on['p99_ms']:.1f} vs {off['p99_ms']:.1f} ms "
        f"({report['p99_ratio_pooled']}x) at {on['req_per_s']:.0f} / "
        f"{off['req_per_s']:.0f} req/s (offered {report['offered_req_per_s']:.0f}, capacity "
        f"{report['capacity_req_per_s']:.0f}); candidate: {evaluated}",
    )


def shadow(quick: bool) -> dict[str, Any]:
    """benchmarks/shadow_load.py in this run (its own two servers; a failure is reported, not raised)."""
    try:
        return shadow_load.run(seconds=2, passes=2, log=log) if quick else shadow_load.run(log=log)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}


def screening(quick: bool) -> dict[str, Any]:
    """benchmarks/screen.py in this run (it starts its own processes; a failure is reported, not raised)."""
    try:
        from benchmarks import screen

        return screen.main(["--quick"] if quick else [])
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def derive(inproc: list[dict[str, Any]], http: dict[str, Any], mem: dict[str, Any]) -> dict[str, Any]:
    by = {c["case"]: c["timings"] for c in inproc}
    med = {case: {m: t[m]["median_ms"] for m in t} for case, t in by.items()}
    small, n500, n1000 = med["small (S7)"], med["500 obs"], med["1000 obs"]
    ratios: dict[str, Any] = {}
    for case, m in med.items():
        ratios[case] = {
            "assess_dict_over_orjson": m["assess_dict"] / m["orjson_floor"],
            "assess_bytes_over_orjson": m["assess_bytes"] / m["orjson_floor"],
            "fhir_resources_over_assess_dict": m["fhir_resources"] / m["assess_dict"],
            "fhir_resources_over_assess_bytes": m["fhir_resources"] / m["assess_bytes"],
            "json_share_of_bytes_path": (m["parse_json"] + m["fhir_bytes"]) / m["assess_bytes"],
            "strict_over_assess_bytes": m["assess_strict"] / m["assess_bytes"],
        }
    ratios["scaling_1000_over_500_assess_dict"] = n1000["assess_dict"] / n500["assess_dict"]
    ratios["scaling_1000_over_500_assess_bytes"] = n1000["assess_bytes"] / n500["assess_bytes"]
    phases = {k: v for k, v in http.get("phases", {}).items() if "targets" in v}
    for key, phase in phases.items():
        t = phase["targets"]
        rate = {name: x["req_per_s"] for name, x in t.items()}
        ratios[f"http_{key}"] = {
            "patient_view_over_peer": rate[http_load.PATIENT_VIEW] / rate[http_load.PEER],
            "order_sign_over_peer": rate[http_load.ORDER_SIGN] / rate[http_load.PEER],
            "assess_over_healthz": rate[http_load.ASSESS] / rate[http_load.HEALTHZ],
        }
    s = ratios["small (S7)"]
    targets = [
        _target(
            "small: assess(dict) / orjson floor",
            s["assess_dict_over_orjson"],
            "<=",
            40,
            "x",
            detail=f"{small['assess_dict']:.3f} ms vs {small['orjson_floor']:.4f} ms",
        ),
        _target(
            "small: parse+assess+serialise / orjson floor",
            s["assess_bytes_over_orjson"],
            "<=",
            40,
            "x",
            detail=f"{small['assess_bytes']:.3f} ms vs {small['orjson_floor']:.4f} ms",
        ),
        _target("small: assess(dict) / orjson floor", s["assess_dict_over_orjson"], "<=", 10, "x", "stretch"),
        _target(
            "small: parse+assess+serialise / orjson floor",
            s["assess_bytes_over_orjson"],
            "<=",
            10,
            "x",
            "stretch",
        ),
        _target(
            "small: fhir.resources / assess(dict)",
            s["fhir_resources_over_assess_dict"],
            ">=",
            5,
            "x",
            detail=f"{small['fhir_resources']:.3f} ms vs {small['assess_dict']:.3f} ms",
        ),
        _target(
            "small: fhir.resources / parse+assess+serialise",
            s["fhir_resources_over_assess_bytes"],
            ">=",
            5,
            "x",
            detail=f"{small['fhir_resources']:.3f} ms vs {small['assess_bytes']:.3f} ms",
        ),
        _target(
            "1000 obs: assess(dict) median",
            n1000["assess_dict"],
            "<=",
            25,
            "ms",
            detail=f"parse+assess+serialise {n1000['assess_bytes']:.2f} ms",
        ),
        _target(
            "1000 obs / 500 obs: assess(dict)",
            ratios["scaling_1000_over_500_assess_dict"],
            "<=",
            2.3,
            "x",
            detail=f"{n1000['assess_dict']:.2f} ms / {n500['assess_dict']:.2f} ms",
        ),
    ]
    dozen, d = med[bundles.EVERY_FACT], ratios[bundles.EVERY_FACT]
    targets.append(  # issue 21: the heaviest ordinary call, one current reading of every fact
        _target(
            "a dozen (every fact): parse+assess+serialise / orjson floor",
            d["assess_bytes_over_orjson"],
            "<=",
            15,
            "x",
            detail=f"{dozen['assess_bytes']:.3f} ms vs {dozen['orjson_floor']:.4f} ms",
        )
    )
    targets += http_targets(http, phases, ratios)
    growth = mem.get("rss_growth_mb")
    targets.append(
        _target(
            f"memory: RSS growth over {mem.get('iterations', '?')} assessments",
            growth,
            "<=",
            5,
            "MB",
            detail=f"{mem.get('rss_before_mb')} -> {mem.get('rss_after_mb')} MB"
            if growth is not None
            else str(mem.get("error", ""))[:200],
        )
    )
    return {"ratios": ratios, "targets": targets}


def http_targets(
    http: dict[str, Any], phases: dict[str, Any], ratios: dict[str, Any]
) -> list[dict[str, Any]]:
    """The issue-10 rows: CDS and $assess throughput ratios, hook p99, errors, every record stored."""
    out: list[dict[str, Any]] = []
    if not phases:
        return [_target("HTTP: gunicorn run", None, "<=", 0, "", detail=str(http.get("error", ""))[:300])]
    for key, label in DATABASES.items():
        phase = http["phases"].get(key)
        if phase is None:
            continue
        if "targets" not in phase:
            out.append(_target(f"HTTP {label}: run", None, "<=", 0, "", detail=str(phase.get("error"))[:300]))
            continue
        t, r = phase["targets"], ratios[f"http_{key}"]
        pv, peer = t[http_load.PATIENT_VIEW], t[http_load.PEER]
        a, h = t[http_load.ASSESS], t[http_load.HEALTHZ]
        pv_detail = f"{pv['req_per_s']:.0f} vs peer {peer['req_per_s']:.0f} req/s"
        out += [
            _target(
                f"HTTP {label}: patient-view req/s as % of trivial peer",
                r["patient_view_over_peer"] * 100,
                ">=",
                35,  # issue 21, on a prefetch of one current reading of every fact (issue 10 asked 25)
                "%",
                detail=pv_detail,
            ),
            _target(
                f"HTTP {label}: patient-view req/s as % of trivial peer",
                r["patient_view_over_peer"] * 100,
                ">=",
                50,
                "%",
                "stretch",
            ),
        ]
        for name, short in ((http_load.PATIENT_VIEW, "patient-view"), (http_load.ORDER_SIGN, "order-sign")):
            x = t[name]
            out.append(
                _target(
                    f"HTTP {label}: {short} p99, {http['connections']} connections",
                    x["p99_worst_ms"],
                    "<=",
                    15,  # issue 21 (issue 10 asked 20)
                    "ms",
                    detail=f"worst pass; mean of passes p50 {x['p50_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms",
                )
            )
        share = r["assess_over_healthz"] * 100
        out += [
            _target(
                f"HTTP {label}: $assess req/s as % of /healthz",
                share,
                ">=",
                25,
                "%",
                detail=f"{a['req_per_s']:.0f} vs {h['req_per_s']:.0f} req/s",
            ),
            _target(f"HTTP {label}: $assess req/s as % of /healthz", share, ">=", 50, "%", "stretch"),
        ]
        errors = {name.rsplit("/", 1)[-1]: x["errors"] for name, x in t.items()}
        out.append(
            _target(
                f"HTTP {label}: errors, every endpoint",
                sum(errors.values()),
                "<=",
                0,
                "",
                detail=str(errors)[:200],
            )
        )
        rows, expected = phase["rows"], phase["rows_expected"]
        for kind in ("cards", "feedback", "audit"):
            got = rows.get(kind)
            missing = None if got is None else expected[kind] - got
            out.append(
                _target(
                    f"HTTP {label}: {kind} records not stored after the run",
                    missing,
                    "<=",
                    0,
                    "",
                    detail=f"{got} rows for {expected[kind]} answered"
                    if got is not None
                    else str(rows)[:200],
                )
            )
    return out


def print_table(results: dict[str, Any]) -> None:
    log("\n== In-process (ms per call; median / p95; same bytes, interleaved round-robin) ==")
    cols = inprocess.MEASUREMENTS
    log(f"{'case':<11} {'entries':>7} {'KiB':>6} {'rounds':>6}  " + "  ".join(f"{c:>17}" for c in cols))
    for c in results["inprocess"]:
        t = c["timings"]
        cells = "  ".join(f"{t[m]['median_ms']:>8.3f}/{t[m]['p95_ms']:<8.3f}" for m in cols)
        log(f"{c['case']:<11} {c['entries']:>7} {c['request_bytes'] / 1024:>6.0f} {c['rounds']:>6}  {cells}")
    log(
        "\n   ratios            assess/orjson  bytes-path/orjson  fhir.resources/assess  fhir.resources/bytes-path"
        "  strict/bytes-path"
    )
    for c in results["inprocess"]:
        r = results["derived"]["ratios"][c["case"]]
        log(
            f"   {c['case']:<16} {r['assess_dict_over_orjson']:>12.1f}x {r['assess_bytes_over_orjson']:>17.1f}x "
            f"{r['fhir_resources_over_assess_dict']:>21.1f}x {r['fhir_resources_over_assess_bytes']:>24.1f}x"
            f" {r['strict_over_assess_bytes']:>17.1f}x"
        )
    audit = results.get("audit_record", {})
    if "median_ms" in audit:
        log(
            f"   (info) one audit write, as $assess/CDS now do per request: median {audit['median_ms']:.2f} ms, "
            f"p95 {audit['p95_ms']:.2f} ms"
        )
    journal = results.get("journal", {})
    if "submit" in journal:
        log(
            "   (info) the audit journal, per record on the answer's path: "
            f"append {journal['submit']['median_ms'] * 1e3:.1f} us median "
            f"(p95 {journal['submit']['p95_ms'] * 1e3:.1f} us); with NECKCHECK_JOURNAL_SYNC_MS=0 "
            f"{journal['submit_sync0']['median_ms']:.2f} ms median (an fdatasync each)"
        )
    print_http(results["http"])
    print_shadow(results["shadow"])
    m = results["memory"]
    log(f"\n== Memory: one fresh process, {m.get('iterations', '?')} assessments of the small Bundle ==")
    if "rss_growth_mb" in m:
        log(
            f"   VmRSS {m['rss_before_mb']} MB -> {m['rss_after_mb']} MB (growth {m['rss_growth_mb']} MB), "
            f"gc objects {m['gc_objects_before']} -> {m['gc_objects_after']}, "
            f"{m['mean_ms_per_assessment']} ms per parse+assess"
        )
    else:
        log(f"   failed: {m.get('error')}")
    log("\n== Targets ==")
    for t in results["derived"]["targets"]:
        shown = "-" if t["value"] is None else f"{t['value']:.2f}{t['unit']}"
        label = f"{'(stretch) ' if t['kind'] == 'stretch' else ''}{t['name']}"
        log(f"{t['status']:<5} {label:<58} {shown:>10} {t['op']} {t['limit']}{t['unit']:<3} {t['detail']}")


def print_http(http: dict[str, Any]) -> None:
    log(
        f"\n== HTTP: gunicorn (service/gunicorn.conf.py for neckcheck and the trivial peer), {http.get('generator')}, "
        f"{http.get('connections')} connections, {http.get('passes')} alternating passes of {http.get('seconds_per_pass')} s =="
    )
    if "phases" not in http:
        log(f"   failed: {http.get('error')}")
        return
    for key, phase in http["phases"].items():
        log(f"-- {DATABASES[key]} --")
        if "targets" not in phase:
            log(f"   failed: {phase.get('error')}")
            continue
        log(
            f"{'endpoint':<52} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p99 worst':>9} {'errors':>7}"
        )
        for name, t in phase["targets"].items():
            log(
                f"{name:<52} {t['req_per_s']:>8.1f} {t['p50_ms']:>8.2f} {t['p95_ms']:>8.2f} {t['p99_ms']:>8.2f} "
                f"{t['p99_worst_ms']:>9.2f} {t['errors']:>7}"
            )
        rows, expected = phase["rows"], phase["rows_expected"]
        log(f"   rows after the run: {rows}; answered: {expected}")
        if phase.get("generators"):
            g = phase["generators"]
            log(
                f"   load generator: /healthz {g['wrk_req_per_s']:.0f} req/s with wrk vs {g['python_threads_req_per_s']:.0f} "
                f"with the Python threads client ({g['wrk_over_python']}x); client CPU per request "
                f"{g['wrk_client_cpu_us_per_request']} us (wrk) vs {g['python_client_cpu_us_per_request']} us (Python)"
            )
        log(
            f"   workers recycled: {phase['workers_recycled']}; worker RSS {phase['worker_rss_mb_start']} -> "
            f"{phase['worker_rss_mb_end']} MB; load average {phase['loadavg_before']} -> {phase['loadavg_after']}"
        )
        for line, count in phase.get("server_error_log", {}).items():
            log(f"   server log x{count}: {line}")
        if any(v != "ok" for v in phase["sanity"].values()):
            log(f"   sanity: {phase['sanity']}")


def print_shadow(report: dict[str, Any]) -> None:
    log("\n== Shadow mode: patient-view at half capacity, without / with a candidate table ==")
    if "p99_ratio" not in report:
        log(f"   failed: {report.get('error')}")
        return
    log(
        f"   capacity {report['capacity_req_per_s']:.0f} req/s closed-loop (with shadow "
        f"{report['capacity_with_shadow_req_per_s']:.0f}); offered {report['offered_req_per_s']:.0f} req/s, "
        f"{report['passes']} alternating passes of {report['seconds_per_pass']} s"
    )
    for side in ("without", "with"):
        x = report[side]
        log(
            f"   {side:<8} {x['req_per_s']:>7.1f} req/s  p50 {x['p50_ms']:>6.2f} ms  p99 {x['p99_ms']:>7.2f} ms  "
            f"(passes {x['p99_per_pass_ms']})  errors {x['errors']}"
        )
    log(
        f"   p99 with / without: median of passes {report['p99_ratio']} (pass by pass "
        f"{report['p99_ratio_per_pass']}; pooled {report['p99_ratio_pooled']}); "
        f"candidate on the paced calls {report['shadow_paced']}, at capacity {report['shadow_at_capacity']}; "
        f"load average {report['loadavg_before']} -> {report['loadavg_after']}"
    )


def plot_http(ax_rate: Any, ax_latency: Any, http: dict[str, Any]) -> None:
    """Req/s and p50/p99 per endpoint, one bar per database (SQLite, PostgreSQL)."""
    phases = {k: v for k, v in http.get("phases", {}).items() if "targets" in v}
    if not phases:
        ax_rate.text(0.5, 0.5, "HTTP run failed", ha="center")
        return
    names = list(next(iter(phases.values()))["targets"])
    short = [n.replace("POST /cds-services/", "").replace("POST ", "").replace("GET ", "") for n in names]
    width = 0.8 / len(phases)
    for i, (key, phase) in enumerate(phases.items()):
        xs = [j + i * width for j in range(len(names))]
        t = phase["targets"]
        ax_rate.bar(xs, [t[n]["req_per_s"] for n in names], width, label=DATABASES[key])
        ax_latency.bar(xs, [t[n]["p99_ms"] for n in names], width, label=f"{DATABASES[key]} p99", alpha=0.5)
        ax_latency.bar(xs, [t[n]["p50_ms"] for n in names], width, label=f"{DATABASES[key]} p50")
    for ax in (ax_rate, ax_latency):
        ax.set_xticks([j + width * (len(phases) - 1) / 2 for j in range(len(names))])
        ax.set_xticklabels(short, rotation=20, fontsize=7, ha="right")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    ax_rate.set_ylabel("req/s (successful)")
    ax_rate.set_title(f"HTTP throughput, {http['connections']} connections (wrk)")
    ax_latency.axhline(20, color="grey", lw=0.8, ls=":")
    ax_latency.set_ylabel("latency, ms (mean of passes)")
    ax_latency.set_title("HTTP latency p50 / p99 (target: hook p99 <= 20 ms)")


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = results["inprocess"]
    x = [c["entries"] for c in cases]
    series = {
        "assess_dict": ("Assessor.run (parsed dict)", "o-"),
        "assess_bytes": ("parse + assess + serialise (HTTP path)", "s-"),
        "orjson_floor": ("orjson loads+dumps (floor)", "^--"),
        "fhir_resources": ("fhir.resources R4B parse+validate+dump", "v--"),
    }
    fig, ((left, right), (rate, latency)) = plt.subplots(2, 2, figsize=(13, 10))
    plot_http(rate, latency, results["http"])
    for key, (label, style) in series.items():
        med = [c["timings"][key]["median_ms"] for c in cases]
        p95 = [c["timings"][key]["p95_ms"] for c in cases]
        left.errorbar(
            x,
            med,
            yerr=[[0] * len(med), [p - m for p, m in zip(p95, med, strict=True)]],
            fmt=style,
            capsize=3,
            label=label,
        )
    left.axhline(25, color="grey", lw=0.8, ls=":")
    left.text(x[0], 27, "25 ms target (1,000 obs)", fontsize=8, color="grey")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("Bundle entries (Observations)")
    left.set_ylabel("time per call, ms (median; bar = p95)")
    left.set_title("In-process time vs Bundle size")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    ratios = results["derived"]["ratios"]
    right.plot(
        x, [ratios[c["case"]]["assess_dict_over_orjson"] for c in cases], "o-", label="assess / orjson"
    )
    right.plot(
        x, [ratios[c["case"]]["assess_bytes_over_orjson"] for c in cases], "s-", label="HTTP path / orjson"
    )
    right.plot(
        x,
        [ratios[c["case"]]["fhir_resources_over_assess_dict"] for c in cases],
        "v--",
        label="fhir.resources / assess",
    )
    right.axhline(40, color="grey", lw=0.8, ls=":")
    right.axhline(5, color="grey", lw=0.8, ls=":")
    right.set_xscale("log")
    right.set_xlabel("Bundle entries (Observations)")
    right.set_ylabel("ratio of medians")
    right.set_title("Ratios (targets: small <= 40x floor, >= 5x faster than fhir.resources)")
    right.title.set_fontsize(9)
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    meta = results["meta"]
    fig.suptitle(
        f"neckcheck benchmarks, {meta['started_at']} ({meta['cpus']} CPUs, Python {meta['python']})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(RESULTS_PNG, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: a tenth of the time budgets")
    parser.add_argument(
        "--no-postgres", action="store_true", help="HTTP on SQLite only (no PostgreSQL cluster)"
    )
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    started = time.perf_counter()
    meta = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {p: version(p) for p in ("orjson", "fhir.resources", "pydantic", "flask", "gunicorn")},
    }
    log(
        f"neckcheck benchmarks ({'quick' if args.quick else 'full'} run), load average {meta['loadavg_start']}"
    )
    log("In-process (assess vs orjson floor vs fhir.resources, round-robin):")
    inproc = inprocess.run_all(bundles.cases(), scale=scale, log=log)
    audit = audit_record_cost(50 if args.quick else 200)
    journal = journal_cost(500 if args.quick else 5000)
    log("HTTP (gunicorn, 2 sync workers per app):")
    try:
        http = http_load.run_http(
            seconds=1 if args.quick else 2,
            # five short passes rather than three: a ratio of two means over 10 s each moves less with
            # a noisy moment of this shared VM (run to run, the patient-view ratio moved 24-31 % at 3)
            passes=2 if args.quick else 5,
            postgres=not args.no_postgres,
            log=log,
        )
    except Exception as exc:
        http = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    log("Shadow mode (benchmarks/shadow_load.py: patient-view p99 at half capacity, with and without):")
    shadow_report = shadow(args.quick)
    log("Memory (fresh subprocess):")
    mem = memory(1000 if args.quick else 10_000)
    log("Population screening (benchmarks/screen.py: local engine, Spark, sample against $assess):")
    screen_report = screening(args.quick)
    results: dict[str, Any] = {
        "meta": meta,
        "inprocess": inproc,
        "audit_record": audit,
        "journal": journal,
        "http": http,
        "memory": mem,
        "screen": screen_report,
        "shadow": shadow_report,
    }
    results["derived"] = derive(inproc, http, mem)
    results["derived"]["targets"].append(shadow_target(shadow_report))
    results["derived"]["targets"] += screen_targets(screen_report)
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["total_seconds"] = round(time.perf_counter() - started, 1)
    plot(results)
    meta["total_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS_JSON.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print_table(results)
    misses = [t for t in results["derived"]["targets"] if t["status"] == "MISS" and t["kind"] == "target"]
    log(
        f"\n{len(results['derived']['targets']) - len(misses)} of {len(results['derived']['targets'])} rows PASS "
        f"({len(misses)} target MISS); total {meta['total_seconds']} s; wrote {RESULTS_JSON.relative_to(ROOT)} "
        f"and {RESULTS_PNG.relative_to(ROOT)}"
    )
    return 0  # a benchmark reports; it does not fail the build


if __name__ == "__main__":
    sys.exit(main())
