"""``neckcheck``: assess or populate from a Bundle in a file, print the rule table, or serve.

A bad input prints its OperationOutcome on stdout (so scripts can read it like the HTTP answer), a one-line
reason on stderr, and exits 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import importlib.util
import json
import os
import select
import signal
import sys
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine

from service.assess import OUTPUTS, Assessment, Assessor, parse_json
from service.config import Settings
from service.errors import ConfigError, InvalidInput, NeckcheckError
from service.fhir_values import parse_datetime
from service.output.operation_outcome import from_error
from service.rules.compare import table_changes
from service.rules.table import Condition, Leaf, RuleTable, load_table
from service.rules.versions import catalogue, default_table_file, resolve
from service.sdc.populate import populate

EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
        sys.stdout.flush()  # here, where a closed pipe can still be caught, not at interpreter exit
    except ConfigError as exc:
        print(f"neckcheck: configuration error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        if not _reader_gone():
            raise  # another pipe broke (a screening worker's, say): a failure, not the end of the output
        return 128 + signal.SIGPIPE
    return code


def _reader_gone() -> bool:
    """Whether the reader of stdout went away (``neckcheck evaluate ... | head``); if so, stdout is pointed
    at /dev/null, so the exit is quiet, as a Unix tool's killed by SIGPIPE is, with its status (128 + 13).

    Python ignores SIGPIPE, so the write raised instead, and the flush at exit would raise again (the
    Python documentation's recipe, "Note on SIGPIPE" in the signal module). A pipe with no reader left
    polls as an error on its write end, which tells it from any other pipe that broke."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        gone = any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (OSError, ValueError):  # stdout closed, or not a file descriptor
        return False
    if gone:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return gone


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neckcheck", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(required=True, metavar="command")
    evaluate = sub.add_parser(
        "evaluate", help="assess a Bundle (or $assess Parameters) and print the output Bundle"
    )
    evaluate.add_argument("file", help="JSON file, or - for stdin")
    evaluate.add_argument(
        "--as-of", help="evaluation time (FHIR dateTime); default Bundle.timestamp, then now"
    )
    evaluate.add_argument(
        "--output", choices=OUTPUTS, default=None, help="collection (default) or transaction"
    )
    evaluate.add_argument(
        "--audit", action="store_true", help="write an audit record to NECKCHECK_DATABASE_URL"
    )
    evaluate.set_defaults(run=_evaluate)
    populate = sub.add_parser(
        "populate", help="SDC $populate: the Questionnaire answered from a Bundle (or $populate Parameters)"
    )
    populate.add_argument("file", help="JSON file, or - for stdin")
    populate.add_argument(
        "--as-of", help="evaluation time (FHIR dateTime); default Bundle.timestamp, then now"
    )
    populate.set_defaults(run=_populate)
    rules = sub.add_parser("rules", help="the rule tables: print one (default), list them, compare two")
    rules.set_defaults(run=_rules, table=None)
    _rules_commands(rules)
    audit = sub.add_parser("audit", help="export the audit trail as NDJSON")
    audit.add_argument("--since", required=True, help="FHIR date or dateTime, e.g. 2026-11-01")
    audit.set_defaults(run=_audit)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "current"], help="upgrade to the newest schema, or show it")
    db.set_defaults(run=_db)
    report = sub.add_parser(
        "feedback-report",
        help="CDS Hooks cards shown, accepted and overridden, per rule and per card, week by week",
    )
    report.add_argument("--since", help="FHIR date or dateTime, e.g. 2026-11-01 (default: every record)")
    report.add_argument("--by", choices=["week", "all"], default="week", help="periods (default: week)")
    report.add_argument(
        "--format", choices=["text", "json", "markdown"], default="text", help="what stdout shows"
    )
    report.add_argument(
        "--out", help="also write feedback.json, feedback.md and feedback.png into this folder"
    )
    report.set_defaults(run=_feedback_report)
    screen = sub.add_parser(
        "screen", help="screen a FHIR Bulk Data export (NDJSON), patient by patient, into OUTDIR"
    )
    from service.screen.command import add_arguments

    add_arguments(screen)
    screen.set_defaults(run=_screen)
    serve = sub.add_parser("serve", help="run the HTTP service under gunicorn")
    serve.add_argument("--bind", help="host:port (default NECKCHECK_BIND, else 127.0.0.1:8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default NECKCHECK_WORKERS, else 2)")
    serve.set_defaults(run=_serve)
    return parser


def _evaluate(args: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else _read(args.file)
        as_of = parse_datetime(args.as_of, "--as-of") if args.as_of else None
        body = parse_json(data)
        result = _assessor().run(body, as_of=as_of, output=args.output)
    except NeckcheckError as error:
        return _refuse(error, out)
    if args.audit:
        _store_audit(result, body)
    json.dump(result.bundle, out, indent=2, ensure_ascii=False)
    out.write("\n")
    return 0


def _populate(args: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else _read(args.file)
        as_of = parse_datetime(args.as_of, "--as-of") if args.as_of else None
        parameters = populate(parse_json(data), _assessor(), as_of=as_of).parameters
    except NeckcheckError as error:
        return _refuse(error, out)
    json.dump(parameters, out, indent=2, ensure_ascii=False)
    out.write("\n")
    return 0


def _refuse(error: NeckcheckError, out: TextIO) -> int:
    """A bad input: its OperationOutcome on stdout, a one-line reason on stderr, exit 2."""
    json.dump(from_error(error), out, indent=2, ensure_ascii=False)
    out.write("\n")
    print(f"neckcheck: {error.status}: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _store_audit(result: Assessment, body: object) -> None:
    from service.storage.audit import AuditEvent
    from service.storage.records import writer_for

    settings, engine = _database()
    caller = f"cli:{getpass.getuser()}"
    if not writer_for(settings, engine, background=False).store([AuditEvent.of(result, body, "cli", caller)]):
        print("neckcheck: database unavailable; the audit record was spooled", file=sys.stderr)


def _database() -> tuple[Settings, Engine]:
    """The service's database as it opens it: SQLite is migrated first (under its lock), like at start."""
    from service.storage.database import make_engine, upgrade

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    if settings.database_url.startswith("sqlite"):
        upgrade(engine)
    return settings, engine


def _assessor() -> Assessor:
    """The rule table and codes the service runs with the same settings (NECKCHECK_RULES_FILE,
    NECKCHECK_CODES_FILE; by default the newest active packaged table), so a command answers as it does."""
    settings = Settings.from_env()
    return Assessor.load(settings.rules_file, settings.codes_file, settings.max_entries)


def _since(text: str) -> dt.datetime | None:
    """``--since`` as a time, or None after saying on stderr, in one line, why it is not one."""
    try:
        return parse_datetime(text, "--since")
    except NeckcheckError as error:
        print(f"neckcheck: {error}", file=sys.stderr)
        return None


def _audit(args: argparse.Namespace) -> int:
    from service.storage.audit import since as audit_since

    since = _since(args.since)
    if since is None:
        return EXIT_BAD_INPUT
    _, engine = _database()
    for record in audit_since(engine, since):
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0


def _db(args: argparse.Namespace) -> int:
    from service.storage.database import current_revision, head_revision, make_engine, upgrade

    engine = make_engine(Settings.from_env().database_url)
    if args.action == "upgrade":
        upgrade(engine)
    print(f"schema {current_revision(engine)} (newest {head_revision()})")
    return 0


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc


def _rules_commands(rules: argparse.ArgumentParser) -> None:
    commands = rules.add_subparsers(metavar="command")
    show = commands.add_parser("show", help="print a rule table (default: the one the service runs)")
    show.add_argument("table", nargs="?", help="a rule table file, or a packaged version (e.g. 1.0.0)")
    show.set_defaults(run=_rules)
    listing = commands.add_parser("list", help="the packaged versions, their status and effective period")
    listing.set_defaults(run=_rules_list)
    diff = commands.add_parser(
        "diff",
        help="what changes from OLD to NEW: the table diff in words; with --corpus, every patient of an "
        "export assessed under both, into OUTDIR (changes.ndjson, impact.json, impact.md, impact.png)",
    )
    diff.add_argument("old", help="rule table file, or packaged version")
    diff.add_argument("new", help="rule table file, or packaged version")
    diff.add_argument("--corpus", help="anything `neckcheck screen` reads: an NDJSON folder or a manifest")
    diff.add_argument("--out", help="output directory (needed with --corpus)")
    diff.add_argument(
        "--as-of",
        help="evaluation time (FHIR dateTime) for both tables; default: one clock reading at the start",
    )
    diff.set_defaults(run=_rules_diff)
    shadow = commands.add_parser(
        "shadow-report",
        help="what shadow mode (NECKCHECK_SHADOW_RULES) found: live calls the candidate table would change",
    )
    shadow.add_argument("--since", required=True, help="FHIR date or dateTime, e.g. 2026-11-01")
    shadow.add_argument(
        "--format", choices=["markdown", "json"], default="markdown", help="what stdout shows"
    )
    shadow.add_argument("--out", help="also write shadow.json and shadow.md into this folder")
    shadow.set_defaults(run=_rules_shadow_report)


def _rules(args: argparse.Namespace) -> int:
    table = _assessor().table if args.table is None else load_table(resolve(args.table))
    sys.stdout.write(format_table(table))
    return 0


def _rules_list(args: argparse.Namespace) -> int:
    running = default_table_file()
    for path, table in catalogue().entries:
        life = table.lifecycle
        period = life.period
        mark = "  <- runs by default" if path == running else ""
        print(f"{table.version:<8} {table.status:<8} effective {period:<26} {path.name}{mark}")
    return 0


def _rules_diff(args: argparse.Namespace) -> int:
    old, new = resolve(args.old), resolve(args.new)
    words = table_changes(load_table(old), load_table(new))
    if args.corpus is None:
        print("\n".join(words))
        return 0
    if args.out is None:
        print("neckcheck: rules diff --corpus needs --out OUTDIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    from service.screen.impact import diff_corpus

    try:
        summary = diff_corpus(old, new, Path(args.corpus), Path(args.out), args.as_of, words)
    except NeckcheckError as error:
        print(f"neckcheck: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(summary)
    return 0


def _rules_shadow_report(args: argparse.Namespace) -> int:
    """Read from NECKCHECK_DATABASE_URL, where the service stores shadow mode's differences."""
    from service.shadow import report

    since = _since(args.since)
    if since is None:
        return EXIT_BAD_INPUT
    _, engine = _database()
    data = report.shadow_report(engine, since)
    print(json.dumps(data, indent=1, ensure_ascii=False) if args.format == "json" else report.markdown(data))
    if args.out:
        for path in report.write(data, Path(args.out)):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def format_table(table: RuleTable) -> str:
    """The rule table as a clinician would read it, straight from the data the engine runs."""
    life = table.lifecycle
    lines = [
        f"{table.id} {table.version}: {table.title}",
        f"status {life.status}; approved {life.approval_date or '-'}; "
        f"last reviewed {life.last_review_date or '-'}; effective {life.period}",
        "",
    ]
    for rule in table.rules:
        orders = ", ".join(f"{table.orders[o.order].title} ({o.priority})" for o in rule.orders)
        lines += [
            f"{rule.id}  [risk {rule.risk}, card {rule.card}]",
            f"  when:   {_condition(rule.when, table)}",
            f"  orders: {orders}",
            f"  source: {rule.guideline}",
            "",
        ]
    lines += [
        "(none)  [risk low, or negligible if no symptom is present]",
        f"  {table.no_rule_guideline}",
        "",
    ]
    lines += [
        "Unknown facts are never read as absent: a result that could still escalate is preliminary.",
        "",
    ]
    return "\n".join(lines)


def _condition(condition: Condition, table: RuleTable, top: bool = True) -> str:
    if isinstance(condition, Leaf):
        if condition.present:
            return f"{condition.fact} present"
        if condition.one_of:
            return f"{condition.fact} in {'/'.join(condition.one_of)}"
        return f"{condition.fact} > {condition.greater_than}"
    text = f" {condition.op.upper()} ".join(_condition(t, table, top=False) for t in condition.terms)
    return text if top else f"({text})"


def _feedback_report(args: argparse.Namespace) -> int:
    """Read from NECKCHECK_DATABASE_URL, the database the service writes feedback to."""
    from service.storage import feedback_report as fr

    since = _since(args.since) if args.since else None
    if args.since and since is None:
        return EXIT_BAD_INPUT
    if args.out and importlib.util.find_spec("matplotlib") is None:
        raise ConfigError("neckcheck feedback-report --out draws a picture: pip install 'neckcheck[screen]'")
    _, engine = _database()
    report = fr.feedback_report(engine, since, args.by)
    if args.format == "json":
        print(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        print(fr.markdown(report) if args.format == "markdown" else fr.text(report))
    if args.out:
        for path in fr.write(report, Path(args.out)):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _screen(args: argparse.Namespace) -> int:
    from service.screen.command import run

    return run(args)


def _serve(args: argparse.Namespace) -> int:
    from service.serve import run

    return run(bind=args.bind, workers=args.workers)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
