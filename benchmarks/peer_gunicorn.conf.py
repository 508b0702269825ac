"""gunicorn settings for the trivial peer: neckcheck's own (service/gunicorn.conf.py), read from that file.

Workers, threads, timeouts, max_requests and preload come from the same file and the same environment
variables, so the two servers of a `make bench` run differ only in the app they serve. So is the
master's gc.freeze() before each fork; neckcheck's worker hooks (its database pool, its metrics files) are
left out: the peer has neither.
"""

import os
import shutil
from pathlib import Path

_settings: dict = {}
_source = Path(__file__).resolve().parents[1] / "service" / "gunicorn.conf.py"
exec(compile(_source.read_text(encoding="utf-8"), str(_source), "exec"), _settings)

bind = _settings["bind"]
workers = _settings["workers"]
threads = _settings["threads"]
timeout = _settings["timeout"]
graceful_timeout = _settings["graceful_timeout"]
max_requests = _settings["max_requests"]
max_requests_jitter = _settings["max_requests_jitter"]
preload_app = _settings["preload_app"]
accesslog = _settings["accesslog"]
errorlog = _settings["errorlog"]
pre_fork = _settings["pre_fork"]  # the same gc.freeze() before each fork


def on_exit(server):  # the metrics directory neckcheck's file made for this process: not used here
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)
