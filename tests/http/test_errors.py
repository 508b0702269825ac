"""Every way a request can be wrong gets its documented 4xx OperationOutcome, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.errors import ConfigError
from tests.support import bundle_of, facts_bundle, observation

FHIR = "application/fhir+json"


def post(
    client: FlaskClient, data: bytes | str, content_type: str = FHIR, path: str = "/fhir/$assess"
) -> Any:
    response = client.post(path, data=data, content_type=content_type)
    outcome = response.get_json(force=True)
    return response.status_code, outcome


def assert_outcome(outcome: dict[str, Any], code: str, text: str) -> None:
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    assert text in " ".join(i["diagnostics"] for i in outcome["issue"])


@pytest.mark.parametrize(
    ("case", "data", "status", "code", "text"),
    [
        ("empty body", b"", 400, "structure", "body is empty"),
        ("truncated JSON", b'{"resourceType": "Bundle", "entry": [', 400, "structure", "not JSON"),
        ("not UTF-8", b'{"resourceType": "Bundle\xff"}', 400, "structure", "not UTF-8"),
        ("NaN", b'{"resourceType": "Bundle", "x": NaN}', 400, "structure", "NaN"),
        (
            "duplicate keys",
            b'{"resourceType": "Bundle", "resourceType": "Bundle"}',
            400,
            "structure",
            "duplicate",
        ),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000, 400, "structure", "nested too deeply"),
        ("a JSON array", b"[]", 400, "structure", "must be a JSON object"),
        ("not a Bundle", json.dumps(observation("weakness")).encode(), 400, "structure", "expected a Bundle"),
        ("no entries", b'{"resourceType": "Bundle", "type": "collection"}', 400, "structure", "no entries"),
        ("entry not an object", b'{"resourceType": "Bundle", "entry": [1]}', 400, "structure", "entry[0]"),
        (
            "wrong type",
            json.dumps(bundle_of(observation("weakness", valueBoolean="true"))).encode(),
            400,
            "structure",
            "valueBoolean",
        ),
        (
            "two patients",
            json.dumps(bundle_of(observation("weakness"), observation("headache", patient="p2"))).encode(),
            422,
            "processing",
            "one patient per request",
        ),
        (
            "no subject",
            json.dumps(
                bundle_of({k: v for k, v in observation("weakness").items() if k != "subject"})
            ).encode(),
            422,
            "processing",
            "has no subject",
        ),
        (
            "no fact",
            json.dumps(bundle_of({"resourceType": "Patient", "id": "p1"})).encode(),
            422,
            "processing",
            "no entry gives any neckcheck fact",
        ),
    ],
)
def test_bad_input(client: FlaskClient, case: str, data: bytes, status: int, code: str, text: str) -> None:
    got, outcome = post(client, data)
    assert got == status
    assert_outcome(outcome, code, text)


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    got, outcome = post(client, json.dumps(facts_bundle(weakness=True)), content_type="text/plain")
    assert got == 415
    assert_outcome(outcome, "not-supported", "text/plain")


def test_plain_json_content_type_is_accepted(client: FlaskClient) -> None:
    got, _ = post(client, json.dumps(facts_bundle(weakness=True)), content_type="application/json")
    assert got == 200


def test_body_over_the_limit_is_413(make_app: Callable[..., Flask]) -> None:
    client = make_app(max_body_bytes=2048).test_client()
    big = facts_bundle(weakness=True)
    big["entry"][0]["resource"]["note"] = [{"text": "x" * 4096}]
    got, outcome = post(client, json.dumps(big))
    assert got == 413
    assert_outcome(outcome, "too-costly", "size limit")


def test_more_entries_than_the_limit_is_413(make_app: Callable[..., Flask]) -> None:
    client = make_app(max_entries=5).test_client()
    got, outcome = post(
        client, json.dumps(bundle_of(*[observation("weakness", rid=f"w{i}") for i in range(6)]))
    )
    assert got == 413
    assert_outcome(outcome, "too-costly", "limit is 5")


def test_default_entry_limit_is_1000(client: FlaskClient) -> None:
    entries = [observation("weakness", False, rid=f"w{i}") for i in range(1001)]
    got, outcome = post(client, json.dumps(bundle_of(*entries)))
    assert got == 413
    assert_outcome(outcome, "too-costly", "limit is 1000")


def test_unknown_route_is_404_operation_outcome(client: FlaskClient) -> None:
    response = client.get("/fhir/Patient/1")
    assert response.status_code == 404
    assert_outcome(response.get_json(), "not-found", "no such endpoint")


def test_wrong_method_is_405(client: FlaskClient) -> None:
    response = client.get("/fhir/$assess")
    assert response.status_code == 405
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_an_unexpected_failure_is_a_bare_500_without_a_trace(app: Flask) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail")

    response = FlaskClient(app).get("/boom")  # a route made up for the test: not in the contract
    assert response.status_code == 500
    assert b"secret detail" not in response.data and b"Traceback" not in response.data
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_parameters_form_with_as_of(client: FlaskClient) -> None:
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "bundle", "resource": facts_bundle(weakness=True)},
            {"name": "asOf", "valueDateTime": "2026-04-01T10:00:00Z"},
        ],
    }
    got, out = post(client, json.dumps(params))
    assert got == 200
    assert out["entry"][0]["resource"]["occurrenceDateTime"] == "2026-04-01T10:00:00Z"


def test_output_transaction_query(client: FlaskClient) -> None:
    got, out = post(client, json.dumps(facts_bundle(weakness=True)), path="/fhir/$assess?_output=transaction")
    assert got == 200 and out["type"] == "transaction"
    got, outcome = post(client, json.dumps(facts_bundle(weakness=True)), path="/fhir/$assess?_output=batch")
    assert got == 400
    assert_outcome(outcome, "structure", "_output")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"NECKCHECK_MAX_ENTRIES": "many"}, "NECKCHECK_MAX_ENTRIES must be a number"),
        ({"NECKCHECK_MAX_BODY_BYTES": "10"}, "NECKCHECK_MAX_BODY_BYTES must be at least 1024"),
        ({"NECKCHECK_RULES_FILE": "/nonexistent.json"}, "no such file"),
        ({"NECKCHECK_LOG_LEVEL": "LOUD"}, "NECKCHECK_LOG_LEVEL"),
        ({"NECKCHECK_MAX_ENTRYS": "5"}, "unknown setting"),
        ({"NECKCHECK_INSECURE_DEV": "maybe"}, "NECKCHECK_INSECURE_DEV must be 1 or 0"),
        ({"NECKCHECK_PUBLIC_URL": "ftp://x"}, "NECKCHECK_PUBLIC_URL must be an http"),
        ({"NECKCHECK_DATABASE_URL": "nonsense://x"}, "NECKCHECK_DATABASE_URL: cannot use the database"),
        ({"NECKCHECK_FHIR_READ_TIMEOUT": "0"}, "NECKCHECK_FHIR_READ_TIMEOUT must be between"),
    ],
)
def test_a_bad_setting_stops_the_start_naming_it(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app(settings)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NECKCHECK_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("NECKCHECK_MAX_ENTRIES", "2")
    monkeypatch.setenv("NECKCHECK_WORKERS", "4")  # a gunicorn setting: accepted, not the app's
    monkeypatch.setenv("NECKCHECK_INSECURE_DEV", "1")
    client = create_app().test_client()
    got, _ = post(client, json.dumps(bundle_of(*[observation("weakness", rid=f"w{i}") for i in range(3)])))
    assert got == 413


def test_strict_validation_is_a_choice(client: FlaskClient) -> None:
    """?_validate=strict checks every element with fhir.resources; the default reads only what it uses."""
    odd = bundle_of(observation("weakness", True, status="final", bodySite={"text": 7}))
    default, _ = post(client, json.dumps(odd))
    strict, outcome = post(client, json.dumps(odd), path="/fhir/$assess?_validate=strict")
    assert (default, strict) == (200, 400)
    assert "strict validation" in outcome["issue"][0]["diagnostics"] or "bodySite" in json.dumps(outcome)
    valid, _ = post(client, json.dumps(facts_bundle(weakness=True)), path="/fhir/$assess?_validate=strict")
    assert valid == 200
    bad_mode, _ = post(client, json.dumps(facts_bundle(weakness=True)), path="/fhir/$assess?_validate=maybe")
    assert bad_mode == 400
