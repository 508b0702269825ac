"""The service as deployed, started for a test: gunicorn with service/gunicorn.conf.py on 127.0.0.1.

One place for what several test modules need: a free loopback port, the start (waiting for /healthz),
and a graceful stop.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).parents[1]
MAKE_RUN = ["neckcheck", "serve"]  # the Makefile's `make run`, the container's CMD


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def dockerfile_cmd() -> list[str]:
    (line,) = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if re.match(r"CMD\s+\[", ln)]
    command: list[str] = json.loads(line.split(None, 1)[1])
    return command


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def start(
    folder: Path, command: list[str] | None = None, cwd: Path = ROOT, port: int | None = None, **env: str
) -> Server:
    """Start ``command`` (default: exactly what ``make run`` runs) with a throwaway database in ``folder``;
    ``env`` wins over this process's environment (``PATH`` included). ``port``: one chosen beforehand, when
    the test must know the service's URL before it starts (default: a free one)."""
    port = port or free_port()
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "NECKCHECK_BIND": f"127.0.0.1:{port}",
        "NECKCHECK_WORKERS": "1",
        "NECKCHECK_INSECURE_DEV": "1",  # as `make run` sets it
        "NECKCHECK_APP_DEMO": "1",  # likewise
        "NECKCHECK_DATABASE_URL": f"sqlite:///{folder / 'neckcheck.db'}",
        "NECKCHECK_SPOOL_DIR": str(folder / "spool"),
        **env,
    }
    url = f"http://127.0.0.1:{port}"
    process = launch(command or MAKE_RUN, folder, f"{url}/healthz", "gunicorn", cwd=cwd, env=environment)
    return Server(process, url)


def launch(
    command: list[str],
    folder: Path,
    ready: str,
    what: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    seconds: float = 30,
) -> subprocess.Popen[bytes]:
    """Start a server process, its output in ``folder/server.log``, and wait until GET ``ready`` succeeds;
    if it does not within ``seconds``, kill it and raise with the end of its log."""
    log = folder / "server.log"  # a file, not a pipe: an unread pipe fills up and blocks the server
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(ready, timeout=2).ok:
                return process
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a worker still booting
            time.sleep(0.2)
    process.kill()
    process.wait(timeout=10)
    raise RuntimeError(f"{what} did not start: {log.read_text(errors='replace')[-2000:]}")


@contextmanager
def running(
    folder: Path, command: list[str] | None = None, port: int | None = None, **env: str
) -> Iterator[Server]:
    server = start(folder, command, port=port, **env)
    try:
        yield server
    finally:
        server.stop()
