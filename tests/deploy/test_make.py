"""The two commands' set-up, as make plans it (``make -n``): ``make run`` installs the runtime lock only
(what the image holds, ~150 MB), ``make test`` adds the dev lock (~1.4 GB: pyspark, playwright, the
linters); both share .venv/, so each adds only what it lacks.

make's plan is read in a scratch folder holding the Makefile and the files its rules depend on, with the
stamps a previous command would have left, so nothing is installed here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("Makefile", "pyproject.toml", "requirements.lock", "requirements-dev.lock")
RUNTIME_LOCK = "--quiet --require-hashes -r requirements.lock"
DEV_LOCK = "--quiet --require-hashes -r requirements-dev.lock"
PROJECT = "--quiet --no-deps -e ."


def plan(folder: Path, target: str, *stamps: str) -> list[str]:
    """What ``make target`` would run in ``folder``, a checkout whose .venv holds ``stamps``."""
    for name in SOURCES:
        shutil.copy(ROOT / name, folder / name)
        os.utime(folder / name, (1_000_000_000, 1_000_000_000))  # older than any stamp
    venv = folder / ".venv"
    shutil.rmtree(venv, ignore_errors=True)
    if stamps:
        (venv / "bin").mkdir(parents=True)
        for stamp in stamps:
            (venv / stamp).touch()
            os.utime(venv / stamp, (1_500_000_000, 1_500_000_000))
    done = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", target],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.splitlines()


def installs(commands: list[str]) -> list[str]:
    return [c.split("pip install ", 1)[1] for c in commands if "/pip install " in c]


def test_make_run_installs_the_runtime_lock_only(tmp_path: Path) -> None:
    commands = plan(tmp_path, "run")
    assert installs(commands) == ["--quiet --upgrade pip==25.3", RUNTIME_LOCK, PROJECT]
    assert commands[-1].endswith(".venv/bin/neckcheck serve")


@pytest.mark.parametrize("target", ["test", "unit", "lint", "screenshots"])
def test_make_test_installs_the_runtime_then_the_dev_lock(tmp_path: Path, target: str) -> None:
    assert installs(plan(tmp_path, target)) == [
        "--quiet --upgrade pip==25.3",
        RUNTIME_LOCK,
        PROJECT,
        DEV_LOCK,
    ]


def test_make_test_after_make_run_adds_the_dev_lock(tmp_path: Path) -> None:
    commands = plan(tmp_path, "unit", ".runtime")
    assert installs(commands) == [DEV_LOCK]
    assert not [c for c in commands if "-m venv" in c]


def test_make_run_after_make_test_installs_nothing(tmp_path: Path) -> None:
    commands = plan(tmp_path, "run", ".runtime", ".dev")
    assert installs(commands) == []
    assert len(commands) == 1 and commands[0].endswith("neckcheck serve")


def test_a_new_runtime_lock_is_installed_again_with_the_dev_lock_after_it(tmp_path: Path) -> None:
    plan(tmp_path, "unit", ".runtime", ".dev")
    os.utime(tmp_path / "requirements.lock", (2_000_000_000, 2_000_000_000))  # `make lock` rewrote it
    commands = subprocess.run(
        ["make", "--dry-run", "unit"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert installs(commands) == ["--quiet --upgrade pip==25.3", RUNTIME_LOCK, PROJECT, DEV_LOCK]
