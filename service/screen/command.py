"""``neckcheck screen INPUT --out OUTDIR``: the command-line shell over the two engines.

INPUT may also be a FHIR endpoint (``https://ehr/fhir/Group/<id>``, ``.../fhir/Patient``, ``.../fhir``):
the population is exported from it first (service/screen/export.py), with SMART Backend Services
authorisation when ``--client-id`` and ``--key`` are given.

Exit status: 0 when the run finished and its summary agrees with its outputs (malformed lines, lines
over the limit and refused patients are reported, not fatal); 2 for a command that cannot be run as
given (no such export, a remote manifest URL or one naming files outside its folder, OUTDIR inside the
export or the export inside OUTDIR, a finished OUTDIR without --force, a bad --as-of, an OUTDIR holding
an unfinished run with other settings or damaged settings), before anything of the export is read, and
for an export the FHIR server refused, failed or does not support (one line naming what); 3 when
the run found its own work damaged or its outputs disagreeing with its summary (the message names the
file; run the same command again to redo it); 130 when interrupted (run the same command again to
continue); 1 when an optional dependency is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.errors import ConfigError, InvalidInput, NeckcheckError
from service.fhir_values import fhir_datetime, parse_datetime
from service.reader.bulk_request import endpoint
from service.screen.job import Job, evaluation_time
from service.screen.partitions import MAX_PATIENT_BYTES
from service.screen.places import check_apart
from service.screen.progress import Progress, make_progress
from service.screen.reader import MAX_DECOMPRESSED, MAX_LINE, Limits
from service.screen.reconcile import Unsound
from service.screen.workdir import Damaged

EXIT_BAD_INPUT, EXIT_UNSOUND, EXIT_INTERRUPTED = 2, 3, 130
NEEDS = {"local": ("matplotlib",), "spark": ("matplotlib", "pyspark")}
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)i?B?", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smh]?)")
REMOTE_ONLY = ("client_id", "key", "kid", "scope", "since")

if TYPE_CHECKING:  # the export client (requests) is imported only to export: see _remote
    from service.reader.bulk import Watch
    from service.screen.export import Remote


def size(text: str) -> int:
    """A byte count for a flag: ``16777216``, ``16M``, ``16MiB``, ``64G`` (binary units)."""
    found = _SIZE.fullmatch(text.strip())
    if found is None or int(found.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 16M, 64G)")
    return int(found.group(1)) << (10 * " KMGT".index(found.group(2).upper() or " "))


def duration(text: str) -> float:
    """Seconds for a flag: ``90``, ``90s``, ``30m``, ``6h``."""
    found = _DURATION.fullmatch(text.strip())
    if found is None or float(found.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 30m, 6h)")
    return float(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input",
        help="Bulk Data export: a directory of *.ndjson(.gz), its manifest JSON, or a FHIR endpoint to "
        "export from: https://server/fhir/Group/<id>, https://server/fhir/Patient or https://server/fhir",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output directory outside the export (an unfinished run resumes)",
    )
    parser.add_argument("--force", action="store_true", help="replace a finished run in OUTDIR")
    parser.add_argument(
        "--allow-dir",
        action="append",
        default=[],
        type=Path,
        help="a folder a manifest may name files in, besides its own (repeatable)",
    )
    parser.add_argument(
        "--as-of",
        help="evaluation time (FHIR dateTime): later-dated evidence is not used; default: one clock "
        "reading at the start, used for every patient and recorded in summary.json",
    )
    parser.add_argument(
        "--subject-reports",
        action="store_true",
        help="also an individual MeasureReport per patient with escalation due (fhir/MeasureReport.ndjson)",
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
        "--max-line-bytes", type=size, default=MAX_LINE, help="a longer line is reported and skipped (16M)"
    )
    parser.add_argument(
        "--max-decompressed-bytes",
        type=size,
        default=MAX_DECOMPRESSED,
        help="a .gz file giving more is reported and skipped (64G)",
    )
    parser.add_argument(
        "--max-patient-bytes",
        type=size,
        default=MAX_PATIENT_BYTES,
        help="a patient with more NDJSON is refused unread (64M)",
    )
    parser.add_argument(
        "--progress-every", type=float, default=10.0, help="seconds between progress lines when not a TTY"
    )
    remote = parser.add_argument_group("export from a FHIR server (INPUT a FHIR endpoint)")
    remote.add_argument("--client-id", help="SMART Backend Services client id registered with the server")
    remote.add_argument(
        "--key", type=Path, help="the client's private key: PEM or JWK (RSA: RS384, P-384: ES384)"
    )
    remote.add_argument(
        "--kid", help="the key's id in the JWK Set registered with the server (else the JWK's)"
    )
    remote.add_argument("--scope", help="scopes to ask for (default: system/<type>.rs of each type screened)")
    remote.add_argument("--since", help="export only resources changed since this FHIR instant (_since)")
    remote.add_argument(
        "--export-timeout", type=duration, default=6 * 3600.0, help="give up waiting for the export (6h)"
    )
    remote.add_argument(
        "--keep-export",
        action="store_true",
        help="keep the downloaded NDJSON in OUTDIR/.export after success",
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
    remote: Remote | None = None
    try:
        source, out = Path(args.input), Path(args.out)
        remote = _remote(args)
        if remote is not None:
            from service.screen.export import download

            source = download(remote, out, _watch(progress), args.force)
        check_apart(source, out)
        job = Job(
            source=source,
            out=out,
            when=evaluation_time(args.as_of),
            workers=args.workers,
            partitions=args.partitions,
            max_entries=args.max_entries,
            limits=Limits(args.max_line_bytes, args.max_decompressed_bytes),
            max_patient_bytes=args.max_patient_bytes,
            allowed=tuple(args.allow_dir),
            force=args.force,
            subject_reports=args.subject_reports,
        )
        if args.engine == "spark":
            from service.screen.spark import run_spark

            data = run_spark(job, progress)
        else:
            from service.screen.local import run_local

            data = run_local(job, progress, _note)
    except NeckcheckError as error:
        progress.close()
        print(f"neckcheck: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (Damaged, Unsound) as error:
        progress.close()
        print(f"neckcheck: {error}; run the same command again to redo it", file=sys.stderr)
        return EXIT_UNSOUND
    except KeyboardInterrupt:
        progress.close()
        print(
            f"neckcheck: interrupted; run the same command again to continue where it stopped ({args.out})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if remote is not None and not args.keep_export:
        from service.screen.export import discard

        discard(Path(args.out))
    print(report(data, Path(args.out)))
    return 0


def _remote(args: argparse.Namespace) -> Remote | None:
    """The export INPUT names when it is a FHIR endpoint; None for a path. The export flags go only with
    an endpoint, --client-id and --key only together (InvalidInput).

    The export client is imported here, not with this module: ``spark-submit service/spark_job.py`` runs
    with service/ first on sys.path, where service/http would stand for the standard library's http that
    requests imports."""
    found = endpoint(args.input)
    if found is None:
        given = [f"--{name.replace('_', '-')}" for name in REMOTE_ONLY if getattr(args, name) is not None]
        if given or args.keep_export:
            raise InvalidInput(f"{', '.join(given) or '--keep-export'}: only with a FHIR endpoint as INPUT")
        return None
    if (args.client_id is None) != (args.key is None):
        raise InvalidInput("--client-id and --key go together (SMART Backend Services)")
    since = fhir_datetime(parse_datetime(args.since, "--since")) if args.since else None
    from service.screen.export import Remote

    return Remote(found, args.client_id, args.key, args.kid, args.scope, since, args.export_timeout)


def _watch(progress: Progress) -> Watch:
    """The export's news on the progress output: the server's X-Progress, then the bytes downloaded."""
    from service.reader.bulk import Watch

    downloading = [False]

    def received(size: int) -> None:
        if not downloading[0]:
            progress.phase("downloading", 0, "bytes")
            downloading[0] = True
        progress.advance(size)

    return Watch(progress.status, received, _note)


def _note(message: str) -> None:
    print(f"neckcheck: {message}", file=sys.stderr, flush=True)


def report(data: dict[str, Any], out: Path) -> str:
    """The few numbers to read on the terminal; everything else is in summary.json."""
    patients = data["patients"]
    risks = ", ".join(f"{risk} {n:,}" for risk, n in data["byRisk"].items())
    lines = data["input"]["lines"]
    skipped = sum(data["input"]["skippedTypes"].values())
    unread = ""
    if lines.get("too-long") or data["input"]["tooLargeFiles"]:
        unread = (
            f"lines over --max-line-bytes {lines.get('too-long', 0):,}, "
            f"files over --max-decompressed-bytes {len(data['input']['tooLargeFiles']):,} "
            "(skipped, listed in input-problems.ndjson)\n"
        )
    return "\n".join(
        [
            f"screened {patients['withResult']:,} patients with a result ({risks}); "
            f"preliminary {data['byStatus']['preliminary']:,}",
            f"escalation due, no matching ServiceRequest in the data: "
            f"{data['escalationWithoutServiceRequest']['patients']:,} patients",
            f"stale readings (older than their lookback, not used) {data['staleReadings']['readings']:,} "
            f"in {data['staleReadings']['patients']:,} patients",
            f"no facts {patients['noFacts']:,}, not assessed {patients['notAssessed']:,}, "
            f"malformed lines {lines.get('malformed', 0):,}, skipped resources {skipped:,}",
            f"{unread}written to {out}/ (results.ndjson, fhir/, summary.json, summary.png)",
        ]
    )
