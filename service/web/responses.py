"""FHIR JSON responses: one serializer, so equal answers are equal bytes."""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Response

FHIR_JSON = "application/fhir+json"


def fhir_bytes(resource: Any) -> bytes:
    """Compact UTF-8 JSON; orjson keeps key order, so equal answers are equal bytes."""
    try:
        return orjson.dumps(resource)
    except TypeError:  # an integer beyond 64 bits echoed from the input: the general encoder (ASCII, so
        # even a stray lone surrogate comes out as a JSON escape rather than an encoding error)
        return json.dumps(resource, separators=(",", ":")).encode("ascii")


def json_response(payload: Any) -> Response:
    """A plain ``application/json`` answer (CDS Hooks) by orjson: the bytes Flask's ``jsonify`` gives
    (keys sorted, compact), without its general-purpose encoder's cost on every hook call."""
    try:
        body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits: the general encoder
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return Response(body, mimetype="application/json")


def fhir_response(resource: Any, status: int = 200) -> Response:
    response = Response(fhir_bytes(resource), status=status, mimetype=FHIR_JSON)
    response.headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
    return response


def locked_down(response: Response, policy: str) -> Response:
    """A page's response under its Content-Security-Policy, with no content-type sniffing."""
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
