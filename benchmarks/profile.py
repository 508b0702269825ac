"""cProfile of ``Assessor.run`` on the generated 1,000-Observation Bundle: the top 25 by cumulative time.

    .venv/bin/python benchmarks/profile.py [--sort tottime] [--top 25] [--repeat 20] [--bytes]
    .venv/bin/python benchmarks/profile.py --patient-view [--repeat 300] [--sort tottime]

``--bytes`` profiles the HTTP path's work instead (parse_json + run + fhir_bytes). ``--patient-view``
profiles one patient-view hook call, the whole of it inside Flask (request parsing, validation, prefetch,
the assessment, the card, the audit and card records, the log line and the metrics) on a fresh SQLite
database, with the same request `make bench` sends (10 Observations and a QuestionnaireResponse).
Not part of `make bench`.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# this file is named profile.py: take benchmarks/ off sys.path before the stdlib's cProfile imports
# its ``profile`` module, or it would import this script instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import argparse  # noqa: E402
import cProfile  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402

from benchmarks.bundles import observations_bundle  # noqa: E402
from service.assess import Assessor  # noqa: E402
from service.intake.json_body import parse_json  # noqa: E402
from service.web.responses import fhir_bytes  # noqa: E402


def patient_view(repeat: int) -> tuple[cProfile.Profile, str]:
    """``repeat`` patient-view calls through the Flask test client, after 20 untimed ones."""
    import io
    import logging
    import tempfile

    from benchmarks.bundles import MARKER, hook_body
    from service.app import create_app

    body = hook_body("patient-view", dt.datetime.now(dt.UTC))  # the test client's app reads the clock
    with tempfile.TemporaryDirectory(prefix="neckcheck-profile-") as tmp:
        app = create_app(
            {
                "database_url": f"sqlite:///{tmp}/neckcheck.db",
                "spool_dir": f"{tmp}/spool",
                "insecure_dev": True,
            }
        )
        logging.getLogger("neckcheck").handlers[0].setStream(io.StringIO())  # each line made, not shown
        client = app.test_client()
        calls = [body.replace(MARKER.encode(), str(n).encode()) for n in range(repeat + 20)]

        def call(data: bytes) -> None:
            response = client.post(
                "/cds-services/neckcheck-patient-view", data=data, content_type="application/json"
            )
            assert response.status_code == 200 and response.get_json()["cards"], response.get_data()[:300]

        for data in calls[:20]:
            call(data)
        profiler = cProfile.Profile()
        profiler.enable()
        for data in calls[20:]:
            call(data)
        profiler.disable()
    return profiler, f"{repeat} x POST /cds-services/neckcheck-patient-view in process ({len(body)} bytes)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (cumulative, tottime, ...)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=20, help="assessments profiled (after 3 warm-ups)")
    parser.add_argument("--bytes", action="store_true", help="profile parse_json + run + fhir_bytes")
    parser.add_argument("--patient-view", action="store_true", help="profile one patient-view hook call")
    args = parser.parse_args()
    if args.patient_view:
        profiler, what = patient_view(args.repeat if args.repeat != 20 else 300)
        print(f"cProfile: {what}; top {args.top} by {args.sort}")
        pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(args.sort).print_stats(args.top)
        return
    data = json.dumps(observations_bundle(1000), indent=1).encode("utf-8")
    assessor = Assessor.load()
    parsed = parse_json(data)

    def once() -> None:
        if args.bytes:
            fhir_bytes(assessor.run(parse_json(data)).bundle)
        else:
            assessor.run(parsed)

    for _ in range(3):
        once()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.repeat):
        once()
    profiler.disable()
    what = "parse_json + Assessor.run + fhir_bytes" if args.bytes else "Assessor.run(parsed)"
    print(
        f"cProfile: {args.repeat} x {what}, 1,000-Observation Bundle ({len(data)} bytes); "
        f"top {args.top} by {args.sort}"
    )
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
