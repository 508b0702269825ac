"""Resident memory of one process before and after 10,000 assessments of the small Bundle.

Run by run.py in a fresh Python subprocess (``python -m benchmarks.memory`` from the project root) so the
numbers belong to a process that, like a gunicorn worker, has only imported the service. It warms up
with 100 assessments, collects garbage, reads VmRSS from /proc/self/status, runs 10,000 more
``Assessor.run(parse_json(body))`` (a fresh parse each time, as every HTTP request gets), collects garbage
again and reads VmRSS again. Prints one JSON object on stdout.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main(iterations: int = 10_000, warmup: int = 100) -> dict[str, object]:
    from service.assess import Assessor
    from service.intake.json_body import parse_json

    data = (ROOT / "tests" / "fixtures" / "scenarios" / "S7-observations.json").read_bytes()
    assessor = Assessor.load()
    for _ in range(warmup):
        assessor.run(parse_json(data))
    gc.collect()
    before_kb, objects_before = status_kb("VmRSS"), len(gc.get_objects())
    started = time.perf_counter()
    for _ in range(iterations):
        assessor.run(parse_json(data))
    elapsed = time.perf_counter() - started
    gc.collect()
    after_kb, objects_after = status_kb("VmRSS"), len(gc.get_objects())
    return {
        "warmup": warmup,
        "iterations": iterations,
        "rss_before_mb": round(before_kb / 1024, 2),
        "rss_after_mb": round(after_kb / 1024, 2),
        "rss_growth_mb": round((after_kb - before_kb) / 1024, 2),
        "peak_rss_mb": round(status_kb("VmHWM") / 1024, 2),
        "gc_objects_before": objects_before,
        "gc_objects_after": objects_after,
        "seconds": round(elapsed, 2),
        "mean_ms_per_assessment": round(elapsed / iterations * 1000, 4),
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(json.dumps(main(n)))
