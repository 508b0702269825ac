"""``neckcheck serve``: gunicorn with the same config file the container and ``make run`` use.

It replaces the current process with ``python -m gunicorn`` (rather than embedding gunicorn) so the
config file runs first, as it does in the container: it must set up the metrics directory before the
app, and prometheus_client with it, is imported.

Before that it tries the listen address once itself: gunicorn, finding the port taken, logs two errors a
second for five seconds and ends with "Can't connect"; a person who typed ``make run`` with another
server on 8080 should read one line that says what is wrong and what to type instead.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from gunicorn.util import is_ipv6, parse_address

CONFIG_FILE = Path(__file__).with_name("gunicorn.conf.py")
DEFAULT_BIND = "127.0.0.1:8080"  # gunicorn.conf.py's default for NECKCHECK_BIND
EX_UNAVAILABLE = 69  # sysexits.h: a service the command needs (here a free address) is unavailable


def how_to_move(example: str = "HOST:PORT") -> str:
    """Both ways to choose the address: the setting (which ``make run`` passes on) and the option."""
    return f"NECKCHECK_BIND={example} make run, or neckcheck serve --bind {example}"


def command(bind: str | None, workers: int | None) -> list[str]:
    """Options given here win over the config file's NECKCHECK_BIND / NECKCHECK_WORKERS."""
    argv = [sys.executable, "-m", "gunicorn", "--config", str(CONFIG_FILE)]
    if bind:
        argv += ["--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    return [*argv, "service.app:create_app()"]


def address(bind: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The address gunicorn will listen on: ``--bind``, else the config file's reading of the environment."""
    return bind or (os.environ if environ is None else environ).get("NECKCHECK_BIND", DEFAULT_BIND)


def unavailable(bind: str) -> str | None:
    """Why gunicorn could not listen on ``bind``, found by binding it once as gunicorn does (TCP with
    SO_REUSEADDR, so a port left in TIME_WAIT is free); None when it can. Unix sockets and inherited file
    descriptors are left to gunicorn."""
    if bind.startswith(("unix:", "fd://")):
        return None
    try:
        host, port = parse_address(bind, default_port="8000")  # gunicorn's own reading of the setting
    except RuntimeError as exc:
        return f"{bind!r} is not HOST:PORT ({exc})"
    try:
        with socket.socket(socket.AF_INET6 if is_ipv6(host) else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except socket.gaierror:
        return f"cannot listen on {bind}: no such host {host!r}"
    except OSError as exc:
        reason = {
            errno.EADDRINUSE: "the port is in use by another program (another neckcheck?)",
            errno.EACCES: "ports below 1024 need privileges",
            errno.EADDRNOTAVAIL: f"{host} is not an address of this machine",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        free = port + 1 if port >= 1024 else 8080  # the next one, or the usual unprivileged one
        other = f"{host}:{free}" if ":" not in host else f"[{host}]:{free}"
        return f"cannot listen on {bind}: {reason}; pick another address: {how_to_move(other)}"
    return None


def welcome(listening: Sequence[tuple[str, int] | str]) -> str:
    """The line that tells a person where to point the browser, once gunicorn listens (its ``when_ready``).

    A wildcard address (the container's 0.0.0.0) is not something to type into a browser, so it is shown
    as this machine's loopback address with the rest of the network named."""
    urls = []
    for where in listening:
        if isinstance(where, str):
            urls.append(f"unix:{where}")
            continue
        host, port = where[0], where[1]
        shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        url = f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"
        urls.append(url + (" (and every other address of this machine)" if shown != host else ""))
    return f"neckcheck is serving on {', '.join(urls)} (another address: {how_to_move()})"


def run(bind: str | None = None, workers: int | None = None) -> int:
    """Exec gunicorn; returns only when the address cannot be listened on (exit status EX_UNAVAILABLE)."""
    problem = unavailable(address(bind))
    if problem:
        print(f"neckcheck: {problem}", file=sys.stderr)
        return EX_UNAVAILABLE
    argv = command(bind, workers)
    os.execv(argv[0], argv)
