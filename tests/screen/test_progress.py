"""Progress: plain periodic lines in CI and logs, a live bar with rate and ETA on a terminal."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bulk_export import Export, write_export
from tests.screen.support import AS_OF

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return write_export(tmp_path_factory.mktemp("export"), 600, seed=4)


def command(export: Export, out: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "service.cli",
        "screen",
        str(export.folder),
        "--out",
        str(out),
        "--as-of",
        AS_OF,
        *args,
    ]


def test_plain_lines_when_stderr_is_not_a_terminal(export: Export, tmp_path: Path) -> None:
    done = subprocess.run(
        command(export, tmp_path / "out", "--workers", "2", "--progress-every", "0"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "\r" not in done.stderr and "\x1b" not in done.stderr  # no bar, no colours in a log
    reading = [line for line in lines if line.startswith("screen: reading ")]
    assessing = [line for line in lines if line.startswith("screen: assessing ")]
    assert reading and re.search(r"MB of [0-9.]+ MB \(100%\), .*done in [0-9.]+ s$", reading[-1])
    assert len(assessing) >= 2, "no periodic line while assessing"
    assert re.search(r"\([0-9]+%\), [0-9,]+ patients, [0-9,]+ patients/s, ETA [0-9,]+ s$", assessing[0])
    assert re.search(r"600 patients, [0-9,]+ patients/s, done in [0-9.]+ s$", assessing[-1])
    assert done.stdout.startswith("screened ")  # the summary goes to stdout, progress to stderr


def test_a_bar_with_rate_and_eta_on_a_terminal(export: Export, tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    run = subprocess.Popen(
        command(export, tmp_path / "out", "--workers", "1"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, "COLUMNS": "160", "TERM": "xterm"},
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    assert run.wait(timeout=300) == 0
    os.close(leader)
    text = seen.decode("utf-8", "replace")
    assert "\r" in text or "\x1b[" in text  # redrawn in place
    assert "assessing" in text and "ETA" in text and "patients" in text and "/s" in text
    assert "screen: assessing" not in text  # not the plain lines
