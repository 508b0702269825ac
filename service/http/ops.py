"""Operational endpoints for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from service.storage.readiness import DEGRADED, NOT_READY, Readiness, check

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers; the rule table was loaded when the app was built, or it would not exist."""
    assessor = current_app.extensions["neckcheck.assessor"]
    return jsonify(status="ok", rules=f"{assessor.table.id} {assessor.table.version}")


def _readiness() -> Readiness:
    """Check, and publish the result as metrics (so a scrape sees it even between probes)."""
    writer = current_app.extensions["neckcheck.writer"]
    state = check(current_app.extensions["neckcheck.database"], writer.spool)
    metrics = current_app.extensions["neckcheck.metrics"]
    metrics.degraded.set(1 if state.status == DEGRADED else 0)
    metrics.ready.set(0 if state.status == NOT_READY else 1)
    metrics.spool_bytes.set(state.spool_bytes)
    metrics.spool_max_bytes.set(state.spool_max_bytes)
    if state.database_back and state.spool_bytes:
        writer.replay_soon()  # the database is back: the writer thread drains the spool
    return state


@bp.get("/readyz")
def readyz() -> Response:
    """200 ready, 200 degraded (database away, spool healthy), 503 not ready; storage/readiness.py."""
    state = _readiness()
    body: dict[str, Any] = {"status": state.status}
    if state.reason:
        body["reason"] = state.reason
    if state.http_status == 200:
        assessor = current_app.extensions["neckcheck.assessor"]
        body["rules"] = f"{assessor.table.id} {assessor.table.version}"
    body["spoolBytes"] = state.spool_bytes
    body["spoolMaxBytes"] = state.spool_max_bytes
    response = jsonify(body)
    response.status_code = state.http_status
    return response


@bp.get("/metrics")
def metrics() -> Response:
    _readiness()
    body = current_app.extensions["neckcheck.metrics"].exposition()
    return Response(
        body, mimetype="text/plain", headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )
