"""The one error path: every failure of a request becomes an OperationOutcome with its status.

neckcheck's own errors carry their status; werkzeug's HTTP errors (404, 405, 413 from the body limit)
are mapped by a table; anything else is logged with its trace server-side and answered as a bare 500
OperationOutcome with no detail, so no stack trace ever reaches a caller.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from service.errors import (
    MethodNotAllowed,
    NeckcheckError,
    NotFound,
    Problem,
    TooLarge,
    Unauthorized,
    Unsupported,
)
from service.output.operation_outcome import from_error, operation_outcome
from service.web.responses import fhir_response

log = logging.getLogger("neckcheck.http")

_HTTP_ERRORS: dict[int, type[NeckcheckError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: TooLarge,
    415: Unsupported,
}


def register(app: Flask) -> None:
    app.register_error_handler(NeckcheckError, _ours)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)


def _ours(error: NeckcheckError) -> Response:
    if isinstance(error, Unauthorized):
        # a bare 401 (CDS Hooks 2.0.1 §Trusting CDS Clients): the reason goes to the log, never the caller
        log.warning("401 %s %s: %s", request.method, request.path, error)
        return Response(status=401, headers={"WWW-Authenticate": "Bearer"}, content_type="text/plain")
    return fhir_response(from_error(error), error.status)


def _http(error: HTTPException) -> Response:
    status = error.code or 500
    kind = _HTTP_ERRORS.get(status)
    if kind is None:
        outcome = operation_outcome([Problem(error.name)], "processing")
        return fhir_response(outcome, status)
    message = {
        404: "no such endpoint; see GET /fhir/metadata",
        405: f"method not allowed here; {error.description}",
        413: "the request body is over the configured size limit (NECKCHECK_MAX_BODY_BYTES)",
        415: "unsupported Content-Type",
    }[status]
    response = fhir_response(from_error(kind(message)), status)
    allow = dict(error.get_headers()).get("Allow")
    if allow:  # RFC 9110 §15.5.6: a 405 names the methods the resource supports
        response.headers["Allow"] = allow
    return response


def _unexpected(error: Exception) -> Response:
    log.exception("unexpected error")  # the trace stays in the server log, never in the response
    outcome = operation_outcome([Problem("internal error; the request was not assessed")], "exception")
    return fhir_response(outcome, 500)
