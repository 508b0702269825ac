"""Operational endpoints for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers; the rule table was loaded when the app was built, or it would not exist."""
    assessor = current_app.extensions["neckcheck.assessor"]
    return jsonify(status="ok", rules=f"{assessor.table.id} {assessor.table.version}")
