"""Instructions per call of the patient-view path and its pieces, counted by valgrind's callgrind.

On the shared 2-core VM a timing moves by a third between repeats, and there is no PMU for ``perf stat``.
A callgrind count with ``PYTHONHASHSEED`` fixed comes out the same run after run, so it can rank a change
of a few per cent. It overstates C-heavy work (the JSON decoder, regexes: valgrind runs glibc's generic
string code, not its SIMD paths) relative to time: compare a piece before and after a change, not one
piece with another. Each part is counted twice, after N calls and after none; the difference over N is
one call. Debian's ``valgrind`` is installed first if it is missing. Not part of `make bench`.

    .venv/bin/python benchmarks/instructions.py                   # every part (about 5 minutes)
    .venv/bin/python benchmarks/instructions.py read_bundle decide --calls 50
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bundles import MARKER, hook_body  # noqa: E402
from benchmarks.http_load import ensure_debian_tool  # noqa: E402

PARTS = ("read_bundle", "decide", "output_bundle", "assess", "patient-view", "peer")
NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)  # fixed, so every count evaluates the same facts
HOOK = "/cds-services/neckcheck-patient-view"


def _wsgi_call(app: Any, body: bytes) -> Callable[[], None]:
    """One patient-view POST straight into the app's WSGI callable, as gunicorn hands it over: the environ
    is built once (werkzeug's EnvironBuilder, outside the count) and given a fresh body stream per call."""
    base = EnvironBuilder(path=HOOK, method="POST", data=body, content_type="application/json").get_environ()

    def start_response(status: str, _headers: Any, _exc: Any = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"the hook call answered {status}")

    def call() -> None:
        answer = app.wsgi_app({**base, "wsgi.input": io.BytesIO(body)}, start_response)
        b"".join(answer)
        getattr(answer, "close", lambda: None)()

    return call


def _calls(part: str) -> Callable[[], object]:
    """One call of ``part``, on the request `make bench` sends (10 Observations, a QuestionnaireResponse)."""
    body = hook_body("patient-view", NOW).replace(MARKER.encode(), b"1")
    if part == "peer":
        from benchmarks.peer import app as peer

        return _wsgi_call(peer, body)
    import logging

    from service.app import create_app
    from service.intake.bundle import read_bundle
    from service.intake.json_body import parse_json
    from service.output.bundle import output_bundle, render
    from service.payloads.cds_hooks import hook_request
    from service.reader.record import gather
    from service.reader.searches import prefetch_templates
    from service.rules.decide import decide
    from service.security.fhir_servers import FhirServerPolicy

    work = tempfile.mkdtemp(prefix="neckcheck-instructions-")
    app = create_app(
        {"database_url": f"sqlite:///{work}/neckcheck.db", "spool_dir": f"{work}/spool", "insecure_dev": True}
    )
    for handler in logging.getLogger("neckcheck").handlers:  # the log line is counted, not printed
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (open for the process's life)
    if part == "patient-view":
        return _wsgi_call(app, body)
    assessor = app.extensions["neckcheck.assessor"]
    book, table = assessor.book, assessor.table
    request = hook_request(parse_json(body))
    client = app.extensions["neckcheck.fhir_client"]
    found = gather(request, prefetch_templates(book), client, FhirServerPolicy.insecure_dev())
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in found.resources],
    }
    done = assessor.run(bundle, now=NOW)
    return {
        "read_bundle": lambda: read_bundle(bundle, book, table, None, assessor.max_entries, NOW),
        "decide": lambda: decide(done.intake.facts, table, in_progress=done.intake.in_progress),
        "output_bundle": lambda: output_bundle(
            render(done.input_hash, done.decision, done.intake, table, book, "collection"),
            done.input_hash,
            done.decision,
            done.intake,
            table,
            book,
        ),
        "assess": lambda: assessor.run(bundle, now=NOW),
    }[part]


def _run(part: str, calls: int) -> None:
    """The child under valgrind: set up, warm up (20 calls), then ``calls`` more."""
    call = _calls(part)
    for _ in range(20 + calls):
        call()


def _collected(part: str, calls: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--run",
        part,
        "--calls",
        str(calls),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind of {part} failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="part", help=f"any of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--calls", type=int, default=100, help="calls counted per part (after 20 warm-ups)")
    parser.add_argument("--run", choices=PARTS, help=argparse.SUPPRESS)  # the child under valgrind
    args = parser.parse_args()
    if args.run:
        _run(args.run, args.calls)
        return
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"no part {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    ensure_debian_tool("valgrind", "valgrind")
    print(f"instructions per call (callgrind, PYTHONHASHSEED=0, {args.calls} calls after 20 warm-ups)")
    for part in args.parts or PARTS:
        per_call = (_collected(part, args.calls) - _collected(part, 0)) / args.calls
        print(f"{part:15} {per_call / 1e6:8.3f} M", flush=True)


if __name__ == "__main__":
    main()
