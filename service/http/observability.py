"""Per-request plumbing: request id, the JSON request log, security headers, request metrics.

X-Request-ID is honoured when it is a plain token (so an EHR can trace a call end to end) and made up
otherwise; it is echoed on every response.
"""

from __future__ import annotations

import logging
import re
import time

from flask import Flask, Response, current_app, g, request

from service.ids import random_uuid

log = logging.getLogger("neckcheck.request")
_SAFE_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def register(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)


_CONVERTER = re.compile(r"<[a-z_]+:")


def _start() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _SAFE_ID.fullmatch(given) else random_uuid()
    g.started = time.perf_counter()


def _route() -> str:
    """The route template, converters left out (``<fhir_id:rid>`` -> ``<rid>``): labels name variables."""
    if request.url_rule is None:
        return "(unmatched)"
    return _CONVERTER.sub("<", request.url_rule.rule)


def _finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    route = _route()
    response.headers["X-Request-ID"] = g.get("request_id", "")
    response.headers["X-Content-Type-Options"] = "nosniff"
    if not route.startswith("/docs"):
        response.headers["Cache-Control"] = "no-store"  # clinical answers must not sit in a cache
    metrics = current_app.extensions.get("neckcheck.metrics")
    if metrics is not None:
        metrics.observe_request(request.method, route, response.status_code, seconds)
    fields = {
        "request_id": g.get("request_id"),
        "method": request.method,
        "route": route,
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 2),
        "caller": g.get("caller"),
    }
    log.info("request", extra={"fields": fields})
    return response
