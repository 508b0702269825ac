"""Operational endpoints for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from service.storage.database import readiness

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers; the rule table was loaded when the app was built, or it would not exist."""
    assessor = current_app.extensions["neckcheck.assessor"]
    return jsonify(status="ok", rules=f"{assessor.table.id} {assessor.table.version}")


@bp.get("/readyz")
def readyz() -> Response:
    """Ready = rules loaded and the database reachable with a current schema (503 with the reason)."""
    assessor = current_app.extensions["neckcheck.assessor"]
    reason = readiness(current_app.extensions["neckcheck.database"])
    if reason is None:
        current_app.extensions["neckcheck.audit"].replay()  # the database is back: drain the spool
        return jsonify(status="ready", rules=f"{assessor.table.id} {assessor.table.version}")
    response = jsonify(status="not ready", reason=reason)
    response.status_code = 503
    return response


@bp.get("/metrics")
def metrics() -> Response:
    body = current_app.extensions["neckcheck.metrics"].exposition()
    return Response(
        body, mimetype="text/plain", headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )
