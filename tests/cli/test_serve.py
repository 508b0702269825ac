"""``neckcheck serve`` (what ``make run`` and the container run) as a person meets it: where it serves, how
to move it, and one clear line, at once, when the address is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.serve import EX_UNAVAILABLE, welcome
from tests.live import free_port, running

NECKCHECK = Path(sys.executable).with_name("neckcheck")


def serve(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [str(NECKCHECK), "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NECKCHECK_INSECURE_DEV": "1", **env},
        check=False,
    )
    return done, time.monotonic() - started


@pytest.mark.parametrize("how", ["--bind", "NECKCHECK_BIND"])
def test_a_busy_port_is_one_clear_line_at_once(how: str) -> None:
    with socket.socket() as other:  # another program on the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        address = f"127.0.0.1:{port}"
        given = {"args": ["--bind", address]} if how == "--bind" else {"env": {"NECKCHECK_BIND": address}}
        done, seconds = serve(*given.get("args", []), **given.get("env", {}))
    assert done.returncode == EX_UNAVAILABLE
    assert seconds < 5  # gunicorn alone retries for five seconds
    (line,) = done.stderr.splitlines()
    assert line == (
        f"neckcheck: cannot listen on {address}: the port is in use by another program (another neckcheck?); "
        f"pick another address: NECKCHECK_BIND=127.0.0.1:{port + 1} make run, "
        f"or neckcheck serve --bind 127.0.0.1:{port + 1}"
    )


def test_an_address_that_is_not_this_machines_is_named() -> None:
    done, _ = serve("--bind", f"192.0.2.1:{free_port()}")  # TEST-NET-1: never a local address
    assert done.returncode == EX_UNAVAILABLE
    assert "192.0.2.1 is not an address of this machine" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_serving_says_where_and_how_to_move(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        log = (tmp_path / "server.log").read_text()
    assert (
        f"neckcheck is serving on {server.url}/ (another address: NECKCHECK_BIND=HOST:PORT make run, "
        "or neckcheck serve --bind HOST:PORT)" in log
    )


@pytest.mark.parametrize(
    ("listening", "shown"),
    [
        ([("127.0.0.1", 8080)], "http://127.0.0.1:8080/"),
        ([("0.0.0.0", 8080)], "http://127.0.0.1:8080/ (and every other address of this machine)"),
        ([("::1", 8443, 0, 0)], "http://[::1]:8443/"),
        (["/run/neckcheck.sock"], "unix:/run/neckcheck.sock"),
    ],
)
def test_the_address_is_one_a_browser_can_open(listening: list[tuple[str, int] | str], shown: str) -> None:
    assert welcome(listening).startswith(f"neckcheck is serving on {shown} (another address:")
