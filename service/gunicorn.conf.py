"""gunicorn settings for neckcheck; every value can be overridden from the environment.

Read by ``make run``, ``neckcheck serve`` and the container's CMD, so all three serve the same way.
"""

import os

bind = os.environ.get("NECKCHECK_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("NECKCHECK_WORKERS", "2"))
threads = int(os.environ.get("NECKCHECK_THREADS", "2"))
timeout = int(os.environ.get("NECKCHECK_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("NECKCHECK_GRACEFUL_TIMEOUT", "20"))
max_requests = int(os.environ.get("NECKCHECK_MAX_REQUESTS", "10000"))
max_requests_jitter = int(os.environ.get("NECKCHECK_MAX_REQUESTS_JITTER", "1000"))
accesslog = "-"
errorlog = "-"
preload_app = True
