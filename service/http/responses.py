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


def fhir_response(resource: Any, status: int = 200) -> Response:
    response = Response(fhir_bytes(resource), status=status, mimetype=FHIR_JSON)
    response.headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
    return response
