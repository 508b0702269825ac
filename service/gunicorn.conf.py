"""gunicorn settings for neckcheck; every value can be overridden from the environment.

Read by ``make run``, ``neckcheck serve`` and the container's CMD, so all three serve the same way.
The access log is the app's own JSON request line (service/http/observability.py: route templates, not
raw URLs), so gunicorn's is off.
"""

import gc
import os
import tempfile

# /metrics adds up every worker: each writes its values to files in a fresh directory of this server.
# Set before prometheus_client is first imported: it picks its value store at import time.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="neckcheck-metrics-")

from prometheus_client import multiprocess

from service.serve import DEFAULT_BIND, welcome

bind = os.environ.get("NECKCHECK_BIND", DEFAULT_BIND)
workers = int(os.environ.get("NECKCHECK_WORKERS", "2"))
threads = int(os.environ.get("NECKCHECK_THREADS", "2"))
timeout = int(os.environ.get("NECKCHECK_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("NECKCHECK_GRACEFUL_TIMEOUT", "20"))
max_requests = int(os.environ.get("NECKCHECK_MAX_REQUESTS", "10000"))
max_requests_jitter = int(os.environ.get("NECKCHECK_MAX_REQUESTS_JITTER", "1000"))
accesslog = None
errorlog = "-"
preload_app = True  # load the rule table once, fail fast on a bad setting, before any worker forks


def when_ready(server):  # type: ignore[no-untyped-def]
    """Listening, with the app loaded: say where, and how to pick another address."""
    server.log.info(welcome([listener.sock.getsockname() for listener in server.LISTENERS]))


def pre_fork(server, worker):  # type: ignore[no-untyped-def]
    """Freeze what the master has loaded (the app, the rule table, the codes) before each fork.

    Frozen objects are left out of every later garbage collection: a worker's full collection no longer
    walks the ~100,000 objects of the loaded app (a pause of tens of milliseconds, paid by whichever
    requests are in flight), and their pages stay shared with the master (the gc module's documentation,
    gc.freeze()).
    """
    gc.freeze()


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    """Connections opened by the master (migrations) must not be shared with the forked workers."""
    server.app.wsgi().extensions["neckcheck.database"].dispose(close=False)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Start the worker's record writer at once: its first pass adopts the journals of workers that were
    killed (service/storage/journal.py) and stores their records, without waiting for a first request."""
    worker.wsgi.extensions["neckcheck.writer"].start()
