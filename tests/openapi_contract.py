"""The contract: every response the service gives must be one ``openapi.yaml`` describes.

``openapi.yaml`` is loaded and checked against the OpenAPI 3.0 meta-schema once per session (a broken
document fails every test at once, loudly). ``check_response`` validates one exchange with openapi-core:
the operation must exist, the status must be listed for it, and the headers and body must match what is
listed. ``tests/conftest.py`` routes every response of the ``client`` fixture through it, so the document
cannot fall behind the service without the suite saying where.

Exempt, because the document cannot describe them as operations without claiming they exist:

- a path no operation has (404) and a method a path does not offer (405): the document says so once in
  ``info.description``; their body must still be an OperationOutcome with that status;
- automatic ``OPTIONS`` answers (Flask adds one to every route; the CDS Hooks CORS preflight is one of them
  and has its own tests) and ``HEAD`` (GET without a body);
- the Swagger UI files under ``/docs/`` (static files of a third-party bundle; ``/docs`` itself is checked).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_spec_validator import validate
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_PATH = Path(__file__).resolve().parents[1] / "openapi.yaml"
# The document's server is relative ("/": wherever it is served), so any origin matches; requests are
# checked as if they had been sent to this one, whatever the test's host.
HOST_URL = "http://127.0.0.1:8080"


class ContractViolation(AssertionError):
    """A response openapi.yaml does not describe: a gap in the document or a bug in the service."""


@cache
def spec_dict() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    validate(document)  # the OpenAPI 3.0 meta-schema; raises OpenAPIValidationError
    return document


@cache
def openapi() -> OpenAPI:
    spec_dict()
    # FHIR JSON is JSON; openapi-core only knows application/json by name, and hands text bodies over as
    # bytes, which a `type: string` schema refuses.
    deserializers: dict[str, Callable[[bytes], Any]] = {"application/fhir+json": _fhir_json}
    deserializers.update(dict.fromkeys(("text/plain", "text/html"), _text))
    deserializers["application/yaml"] = _yaml
    config = Config(extra_media_type_deserializers=deserializers)
    return OpenAPI.from_file_path(str(SPEC_PATH), config=config)


@cache
def _outcome_validator() -> Draft4Validator:
    """The document's OperationOutcome schema, for the exempt 404/405 answers (it has no $refs)."""
    return Draft4Validator(spec_dict()["components"]["schemas"]["OperationOutcome"])


def _fhir_json(value: bytes | str, **parameters: str) -> Any:
    """openapi-core passes the media type's parameters (``charset=utf-8``) along with the body."""
    return json.loads(value)


def _text(value: bytes | str, **parameters: str) -> str:
    return value.decode(parameters.get("charset", "utf-8")) if isinstance(value, bytes) else value


def _yaml(value: bytes | str, **parameters: str) -> Any:
    return yaml.safe_load(value)


@dataclass
class _Request:
    """openapi-core's Request protocol from plain values (no server URL or framework needed)."""

    method: str
    path: str
    parameters: RequestParameters
    content_type: str
    body: bytes | None
    host_url: str = HOST_URL


@dataclass
class _Response:
    """openapi-core's Response protocol from plain values."""

    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


def check_response(
    method: str,
    path: str,
    query: Mapping[str, Any] | ImmutableMultiDict[str, Any] | None,
    request_headers: Mapping[str, Any] | Headers | None,
    request_body: bytes | None,
    status: int,
    response_headers: Mapping[str, Any] | Headers,
    response_body: bytes | None,
) -> None:
    """Raise ``ContractViolation`` when openapi.yaml does not describe this response to this request."""
    method = method.lower()
    if method in ("options", "head") or path.startswith("/docs/"):
        return
    req_headers = Headers(request_headers or {})
    resp_headers = Headers(response_headers)
    request = _Request(
        method=method,
        path=path,
        parameters=RequestParameters(query=ImmutableMultiDict(query or {}), header=req_headers),
        content_type=req_headers.get("Content-Type", "application/octet-stream"),
        body=request_body,
    )
    response = _Response(
        status_code=status,
        content_type=resp_headers.get("Content-Type", ""),
        headers=resp_headers,
        data=response_body,
    )
    where = f"{method.upper()} {path} -> {status}"
    try:
        openapi().validate_response(request, response)
    except PathNotFound:
        _check_exempt_error(where, 404, status, resp_headers, response_body)
    except OperationNotFound:
        _check_exempt_error(where, 405, status, resp_headers, response_body)
    except Exception as error:  # openapi-core raises several unrelated types; all mean "not described"
        raise ContractViolation(f"{where}: {_explain(error)}") from error


def _check_exempt_error(where: str, expected: int, status: int, headers: Headers, body: bytes | None) -> None:
    if status != expected:
        raise ContractViolation(f"{where}: not in openapi.yaml, and not the documented {expected}")
    if not headers.get("Content-Type", "").startswith("application/fhir+json"):
        raise ContractViolation(f"{where}: Content-Type {headers.get('Content-Type')!r}, not FHIR JSON")
    errors = list(_outcome_validator().iter_errors(json.loads(body or b"null")))
    if errors:
        raise ContractViolation(f"{where}: not an OperationOutcome: {errors[0].message}")


def _explain(error: BaseException) -> str:
    """openapi-core hides the useful part (the schema errors) in ``__cause__`` chains and lists."""
    parts = [f"{type(error).__name__}: {error}"]
    seen = error.__cause__
    while seen is not None:
        parts.append(f"{type(seen).__name__}: {seen}")
        for inner in getattr(seen, "schema_errors", ())[:5]:
            parts.append(f"  at {'/'.join(map(str, inner.absolute_path))}: {inner.message[:300]}")
        seen = seen.__cause__
    return "\n".join(part if len(part) < 1500 else part[:1500] + " [...]" for part in parts)
