"""Schemathesis against a live gunicorn: every generated request gets an answer openapi.yaml describes.

Started exactly like tests/http/test_live_server.py (the `make run` command, NECKCHECK_INSECURE_DEV=1, a
temporary database). Every check is on, with two adjustments, each because of what the document cannot
express rather than to hide a failure:

- ``positive_data_acceptance`` also accepts 412 and 422: a request valid by the schema can still be about
  data that is not there (412, CDS Hooks prefetch) or not assessable (422, e.g. no neckcheck fact);
- ``ignored_auth`` and ``missing_required_header`` are off, and ``negative_data_rejection`` is skipped for a
  request whose only fault is its headers: the only required header is Authorization, NECKCHECK_INSECURE_DEV=1
  turns the token checks off on purpose, and they have their own tests (tests/http/test_assess_auth.py,
  tests/cds/test_security.py); nor is it applied when the other fault is query parameters the operation
  does not declare, which the service ignores (openapi.yaml says so; OpenAPI 3.0 has no way to) - a
  declared parameter with a value outside its schema must still be refused;

- a schema-valid hook request names the hook of the service it is posted to, and
  ``positive_data_acceptance`` is skipped for a Parameters body without a ``bundle`` part holding a
  resource: OpenAPI 3.0 can state neither the pairing of path and body nor "contains" (both are 400s,
  documented in openapi.yaml); it is skipped too with ``_validate=strict``, which applies the whole FHIR R4
  specification (an empty ``id``, a blank ``type``...) that openapi.yaml does not restate.

Hook requests get their ``fhirServer`` pinned to a closed loopback port, so fuzzing never makes the
service call out to a generated host name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from jsonschema import Draft4Validator
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from service.payloads.cds_hooks import HOOKS
from tests.live import running
from tests.openapi_contract import SPEC_PATH

MAX_EXAMPLES = 25
CLOSED_PORT_SERVER = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20260310,
        "generation": {"max-examples": MAX_EXAMPLES},
        "checks": {
            "enabled": True,
            "positive_data_acceptance": {
                # no 401/403: authentication is off (NECKCHECK_INSECURE_DEV=1), so one is a failure
                "expected-statuses": ["2xx", "404", "412", "422"],
            },
            "ignored_auth": {"enabled": False},
            "missing_required_header": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_path(SPEC_PATH, config=CONFIG)
STATS: dict[str, int] = {}


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = {"NECKCHECK_FHIR_RETRIES": "0", "NECKCHECK_FHIR_CONNECT_TIMEOUT": "0.5"}
    with running(tmp_path_factory.mktemp("schemathesis"), **settings) as server:
        yield server.url


def _only_the_token_is_missing(case: Any) -> bool:
    """Negative at the headers only, or also at the query by undeclared parameters alone."""
    meta = case.meta
    if meta is None or not meta.is_negative_at(ParameterLocation.HEADER):
        return False
    header, query = ParameterLocation.HEADER, ParameterLocation.QUERY
    elsewhere = [loc for loc in ParameterLocation if loc != header and meta.is_negative_at(loc)]
    return not elsewhere or (elsewhere == [query] and _only_undeclared_query_parameters(case))


def _only_undeclared_query_parameters(case: Any) -> bool:
    declared = {p.name: p.definition["schema"] for p in case.operation.query}
    query = case.query or {}
    valid = all(Draft4Validator(declared[k]).is_valid(v) for k, v in query.items() if k in declared)
    return valid and bool(set(query) - set(declared))


def _pin_fhir_server(case: Any) -> None:
    if isinstance(case.body, dict) and isinstance(case.body.get("fhirServer"), str):
        case.body["fhirServer"] = CLOSED_PORT_SERVER


def _match_hook_to_service(case: Any) -> None:
    service = (case.path_parameters or {}).get("id")
    if isinstance(case.body, dict) and case.body.get("hook") in HOOKS.values() and service in HOOKS:
        case.body["hook"] = HOOKS[service]


def _parameters_without_bundle(case: Any) -> bool:
    body = case.body
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        return False
    parts = body.get("parameter")
    return not any(
        isinstance(p, dict) and p.get("name") == "bundle" and isinstance(p.get("resource"), dict)
        for p in parts or []
    )


@schema.parametrize()
def test_the_live_service_matches_openapi_yaml(case: Any, live_url: str) -> None:
    _pin_fhir_server(case)
    if case.operation.path == "/cds-services/{id}":
        _match_hook_to_service(case)
    STATS[case.operation.label] = STATS.get(case.operation.label, 0) + 1
    excluded = [negative_data_rejection] if _only_the_token_is_missing(case) else []
    strict = (case.query or {}).get("_validate") == "strict"  # FHIR R4 itself is stricter than the schema
    if _parameters_without_bundle(case) or strict:
        excluded.append(positive_data_acceptance)
    case.call_and_validate(base_url=live_url, timeout=10, excluded_checks=excluded)


def test_schemathesis_ran_every_operation() -> None:
    """Runs after the parametrized test above (pytest keeps definition order): report and check counts."""
    if not STATS:
        pytest.skip("run together with test_the_live_service_matches_openapi_yaml")
    total = sum(STATS.values())
    print(f"\nschemathesis: {len(STATS)} operations, {total} examples")
    for label, count in sorted(STATS.items()):
        print(f"  {count:4d}  {label}")
    assert len(STATS) == sum(1 for _ in schema.get_all_operations())
    assert total > 0


def test_a_405_lists_the_allowed_methods(live_url: str) -> None:
    response = requests.request("TRACE", f"{live_url}/healthz", timeout=10)
    assert response.status_code == 405
    assert "GET" in response.headers.get("Allow", "")
