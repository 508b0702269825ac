"""Processes that start together on a new database all come up, and the schema is migrated once.

Each process opens the database as the service does at start (the app factory, the CLI commands that
migrate SQLite); before the migration lock, about one start in four failed on a new SQLite file with
"table alembic_version already exists" or "table cds_card already exists".
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from service.config import Settings
from service.storage.database import head_revision
from tests.live import ROOT, free_port, launch
from tests.postgres import Cluster

PROCESSES = 6
ROUNDS = 10
# forkserver: each start is a fresh child of one clean process that has imported the service once, so a
# round costs a fork, not an interpreter start, and nothing of pytest's own threads is forked
_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["service.app", "service.cli"])


def _create_app(database_url: str, spool_dir: str) -> None:
    from service.app import create_app

    settings = Settings.from_mapping(
        {"database_url": database_url, "spool_dir": spool_dir, "insecure_dev": True, "auto_migrate": True}
    )
    create_app(settings)


def _cli(database_url: str, *argv: str) -> None:
    from service.cli import main

    os.environ["NECKCHECK_DATABASE_URL"] = database_url
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the child's whole life
    raise SystemExit(main(list(argv)))


Start = tuple[Callable[..., None], tuple[str, ...]]


def _start_together(starts: list[Start]) -> list[int | None]:
    processes = [_context.Process(target=target, args=args) for target, args in starts]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    return [p.exitcode for p in processes]


def _assert_migrated_once(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert versions == [head_revision()]
        assert {"audit_event", "cds_card", "cds_feedback"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_app_factories_starting_together_on_a_new_sqlite_file_all_come_up(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'round{round_}.db'}"
        spool = str(tmp_path / f"spool{round_}")
        codes = _start_together([(_create_app, (url, spool))] * PROCESSES)
        assert codes == [0] * PROCESSES, f"round {round_}: exit codes {codes}"
        _assert_migrated_once(url)


def test_the_service_and_cli_commands_starting_together_on_a_new_sqlite_file(tmp_path: Path) -> None:
    """Everything that opens the database at start: the app factory, db upgrade, audit, feedback-report."""
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'mixed{round_}.db'}"
        spool = str(tmp_path / f"spool{round_}")
        starts: list[Start] = [
            (_create_app, (url, spool)),
            (_create_app, (url, spool)),
            (_cli, (url, "db", "upgrade")),
            (_cli, (url, "db", "upgrade")),
            (_cli, (url, "audit", "--since", "2026-01-01")),
            (_cli, (url, "feedback-report")),
        ]
        codes = _start_together(starts)
        assert codes == [0] * len(starts), f"round {round_}: exit codes {codes}"
        _assert_migrated_once(url)


def test_app_factories_starting_together_on_a_new_postgresql_database(
    postgres: Cluster, tmp_path: Path
) -> None:
    for round_ in range(3):
        url = postgres.create_database(f"together_{round_}")
        codes = _start_together([(_create_app, (url, str(tmp_path / "spool")))] * PROCESSES)
        assert codes == [0] * PROCESSES, f"round {round_}: exit codes {codes}"
        _assert_migrated_once(url)


@pytest.mark.parametrize("start", range(3))
def test_plain_gunicorn_with_four_workers_in_an_empty_folder_starts_every_time(
    tmp_path: Path, start: int
) -> None:
    """The way most Flask services are started: no config file, no --preload, so each worker migrates."""
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "NECKCHECK_INSECURE_DEV": "1",
        "NECKCHECK_SPOOL_DIR": str(tmp_path / "spool"),
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "4",
        "-b",
        f"127.0.0.1:{port}",
        "service.app:create_app()",
    ]
    server = launch(
        command, tmp_path, f"http://127.0.0.1:{port}/healthz", "gunicorn", cwd=tmp_path, env=env, seconds=60
    )
    try:
        log = tmp_path / "server.log"
        # /readyz answered from one worker; every one of the four must have booted and stayed up
        booted = _wait_for(lambda: log.read_text().count("Booting worker"), 4)
        assert booted == 4, log.read_text()
        assert server.poll() is None and "Worker failed to boot" not in log.read_text()
        _assert_migrated_once(f"sqlite:///{tmp_path / 'neckcheck.db'}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(count: Callable[[], int], wanted: int, seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    seen = 0
    while time.monotonic() < deadline:
        seen = count()
        if seen >= wanted:
            break
        time.sleep(0.2)
    return seen


@pytest.mark.parametrize(
    "command",
    [
        ["neckcheck", "serve", "--bind", "127.0.0.1:0"],
        ["neckcheck", "db", "upgrade"],
        ["neckcheck", "audit", "--since", "2026-01-01"],
    ],
)
def test_a_start_that_cannot_migrate_says_so_in_one_line_naming_the_database(
    tmp_path: Path, command: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'neckcheck.db'}"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "NECKCHECK_DATABASE_URL": url,
        "NECKCHECK_INSECURE_DEV": "1",
    }
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and url in lines[0] and "unable to open database file" in lines[0], done.stderr
