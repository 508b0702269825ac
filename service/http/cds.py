"""The CDS Hooks surface (CDS Hooks 2.0.1): discovery, the two services, feedback.

A thin shell: security and CORS here, everything else in ``service.cds``. Discovery is public; calls to a
service and feedback need a bearer JWT from a trusted issuer unless NECKCHECK_INSECURE_DEV=1.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from service.assess import parse_json
from service.cds.discovery import discovery, smart_app
from service.cds.hook import known_service, run_hook
from service.errors import Unsupported
from service.payloads.cds_hooks import feedback_request
from service.storage.audit import NOT_ASSESSED
from service.web.auth import (
    fhir_server_policy,
    public_base,
    record,
    record_unassessed,
    require_token,
    settings,
    shadow,
)
from service.web.responses import json_response

bp = Blueprint("cds", __name__, url_prefix="/cds-services")
log = logging.getLogger("neckcheck.cds")


@bp.before_request
def authenticate() -> None:
    """CDS Hooks 2.0.1 §Trusting CDS Clients: a JWT whose aud is this service's endpoint URL."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return  # discovery is public; a CORS preflight carries no token
    service_id = (request.view_args or {}).get("service_id", "")
    require_token(f"{public_base()}/cds-services/{service_id}")


@bp.after_request
def cors(response: Response) -> Response:
    origin = request.headers.get("Origin")
    if origin and origin in settings().allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Vary"] = "Origin"
    return response


@bp.get("")
def list_services() -> Response:
    a = current_app.extensions["neckcheck.assessor"]
    app = smart_app(public_base(), settings().app_client_id, settings().app_scopes)
    return jsonify(discovery(a.table, a.book, app))


def _json_body() -> Any:
    if (request.mimetype or "").lower() != "application/json":
        raise Unsupported(
            f"Content-Type {str(request.content_type)[:60]!r} is not supported; send application/json"
        )
    return parse_json(request.get_data(cache=False))


@bp.post("/<service_id>")
def call_service(service_id: str) -> Response:
    known_service(service_id)  # before the body is read: an unknown service is a 404 whatever was sent
    payload = _json_body()
    plan = f"{public_base()}/fhir/PlanDefinition/neckcheck-escalation"
    ext = current_app.extensions
    result = run_hook(
        service_id,
        payload,
        ext["neckcheck.assessor"],
        ext["neckcheck.fhir_client"],
        plan,
        fhir_server_policy(),
        ext["neckcheck.clock"](),
        ext["neckcheck.prefetch_templates"],
    )
    ext["neckcheck.metrics"].observe_fallback(result.fetched, result.failures)
    if result.assessment is not None:
        record(result.assessment, result.bundle, "cds")
    elif result.refused is not None:  # the chart was read, so the read is audited before the 4xx
        record_unassessed(result.bundle, "cds", NOT_ASSESSED)
        raise result.refused
    else:
        record_unassessed(result.bundle, "cds")  # an empty answer is a read of the chart too
    store = ext["neckcheck.feedback"]
    for card in result.response["cards"]:
        rules = [r.id for r in result.assessment.rules_fired] if result.assessment else []
        store.record_card(card["uuid"], service_id, card["indicator"], rules)
    answer = json_response(result.response)
    if result.assessment is not None:  # once the answer is made: the candidate never holds it up
        shadow(result.assessment, result.bundle, "cds")
    return answer


@bp.post("/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    known_service(service_id)
    payload = feedback_request(_json_body())
    current_app.extensions["neckcheck.feedback"].record_feedback(service_id, payload["feedback"])
    return jsonify({})
