"""``neckcheck screen INPUT --out OUTDIR``: the command-line shell over the two engines.

Exit status: 0 when the run finished (malformed lines and refused patients are reported, not fatal);
2 for an input that cannot be screened (no such export, a remote manifest URL, a bad --as-of, an OUTDIR
holding an unfinished run with other settings); 130 when interrupted (run the same command again to
continue); 1 when an optional dependency is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from service.errors import ConfigError, NeckcheckError
from service.screen.job import Job, evaluation_time
from service.screen.progress import make_progress

EXIT_BAD_INPUT, EXIT_INTERRUPTED = 2, 130
NEEDS = {"local": ("matplotlib",), "spark": ("matplotlib", "pyspark")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="Bulk Data export: a directory of *.ndjson(.gz), or its manifest JSON")
    parser.add_argument("--out", required=True, help="output directory (created; an unfinished run resumes)")
    parser.add_argument(
        "--as-of",
        help="evaluation time (FHIR dateTime): later-dated evidence is not used; default: one clock "
        "reading at the start, used for every patient and recorded in summary.json",
    )
    parser.add_argument("--engine", choices=("local", "spark"), default="local")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (local) or local[N] (spark)"
    )
    parser.add_argument(
        "--partitions", type=int, default=0, help="patient-hash partitions (default: from the export's size)"
    )
    parser.add_argument(
        "--max-entries", type=int, default=100_000, help="resources per patient before a patient is refused"
    )
    parser.add_argument(
        "--progress-every", type=float, default=10.0, help="seconds between progress lines when not a TTY"
    )


def run(args: argparse.Namespace) -> int:
    missing = [name for name in NEEDS[args.engine] if importlib.util.find_spec(name) is None]
    if missing:
        extra = "screen" if args.engine == "local" else "screen,spark"
        raise ConfigError(f"neckcheck screen needs {', '.join(missing)}: pip install 'neckcheck[{extra}]'")
    if args.workers < 1 or args.partitions < 0 or args.max_entries < 1:
        print("neckcheck: --workers and --max-entries must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    progress = make_progress(sys.stderr, args.progress_every)
    try:
        job = Job(
            source=Path(args.input),
            out=Path(args.out),
            when=evaluation_time(args.as_of),
            workers=args.workers,
            partitions=args.partitions,
            max_entries=args.max_entries,
        )
        if args.engine == "spark":
            from service.screen.spark import run_spark

            data = run_spark(job, progress)
        else:
            from service.screen.local import run_local

            data = run_local(job, progress)
    except NeckcheckError as error:
        progress.close()
        print(f"neckcheck: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        progress.close()
        print(
            f"neckcheck: interrupted; run the same command again to continue where it stopped ({args.out})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(report(data, Path(args.out)))
    return 0


def report(data: dict[str, Any], out: Path) -> str:
    """The few numbers to read on the terminal; everything else is in summary.json."""
    patients = data["patients"]
    risks = ", ".join(f"{risk} {n:,}" for risk, n in data["byRisk"].items())
    malformed = data["input"]["lines"].get("malformed", 0)
    skipped = sum(data["input"]["skippedTypes"].values())
    return "\n".join(
        [
            f"screened {patients['withResult']:,} patients with a result ({risks}); "
            f"preliminary {data['byStatus']['preliminary']:,}",
            f"escalation due, no matching ServiceRequest in the data: "
            f"{data['escalationWithoutServiceRequest']['patients']:,} patients",
            f"no facts {patients['noFacts']:,}, not assessed {patients['notAssessed']:,}, "
            f"malformed lines {malformed:,}, skipped resources {skipped:,}",
            f"written to {out}/ (results.ndjson, fhir/, summary.json, summary.png)",
        ]
    )
