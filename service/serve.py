"""``neckcheck serve``: gunicorn with the same config file the container and ``make run`` use.

It replaces the current process with ``python -m gunicorn`` (rather than embedding gunicorn) so the
config file runs first, as it does in the container: it must set up the metrics directory before the
app, and prometheus_client with it, is imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CONFIG_FILE = Path(__file__).with_name("gunicorn.conf.py")


def command(bind: str | None, workers: int | None) -> list[str]:
    """Options given here win over the config file's NECKCHECK_BIND / NECKCHECK_WORKERS."""
    argv = [sys.executable, "-m", "gunicorn", "--config", str(CONFIG_FILE)]
    if bind:
        argv += ["--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    return [*argv, "service.app:create_app()"]


def run(bind: str | None = None, workers: int | None = None) -> None:
    argv = command(bind, workers)
    os.execv(argv[0], argv)
