"""The marshmallow payload schemas: a fault is a 400 naming its path, and the published JSON Schemas agree.

The agreement test runs each payload through both the marshmallow schema (what the service does) and the
committed JSON Schema (what an EHR developer validates against): a rule stated in one and not the other
(a ``@validates_schema`` without its ``json_schema_extra``, say) makes them disagree on some payload here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from marshmallow import Schema

from service.errors import InvalidInput
from service.packaged import SCHEMAS_DIR
from service.payloads import flatten, load
from service.payloads.cds_hooks import (
    FeedbackRequestSchema,
    HookRequestSchema,
    feedback_request,
    hook_request,
)
from tests.cds.support import CDS_FIXTURES
from tests.cds.support import hook_request as scenario_hook_request

HOOK = scenario_hook_request("S1-observations.json")
ORDER_SIGN = {
    **scenario_hook_request("S1-observations.json", hook="order-sign"),
    "context": {
        **json.loads((CDS_FIXTURES / "context-order-sign-r4.json").read_text())["context"],
        "patientId": "scn-1",
    },
}
ACCEPTED = json.loads((CDS_FIXTURES / "feedback-accepted.json").read_text())
OVERRIDDEN = json.loads((CDS_FIXTURES / "feedback-overridden-with-reason.json").read_text())


def changed(base: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    payload = copy.deepcopy(base)
    change(payload)
    return payload


def item(payload: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = payload["feedback"][0]
    return first


HOOK_PAYLOADS: dict[str, Any] = {
    "patient-view": HOOK,
    "order-sign": ORDER_SIGN,
    "extra-fields": changed(HOOK, lambda r: r.update(extension={"x": 1}, future=[1])),
    "prefetch-null": changed(HOOK, lambda r: r["prefetch"].update(observations=None)),
    "no-prefetch-no-server": changed(HOOK, lambda r: [r.pop(k) for k in ("prefetch", "fhirServer")]),
    "not-an-object": [HOOK],
    "hook-unknown": changed(HOOK, lambda r: r.update(hook="encounter-start")),
    "hook-number": changed(HOOK, lambda r: r.update(hook=7)),
    "no-hook-instance": changed(HOOK, lambda r: r.pop("hookInstance")),
    "hook-instance-empty": changed(HOOK, lambda r: r.update(hookInstance="")),
    "hook-instance-201": changed(HOOK, lambda r: r.update(hookInstance="x" * 201)),
    "fhir-server-ftp": changed(HOOK, lambda r: r.update(fhirServer="ftp://ehr.example/fhir")),
    "fhir-server-null": changed(HOOK, lambda r: r.update(fhirServer=None)),
    "authorization-without-server": changed(HOOK, lambda r: r.pop("fhirServer")),
    "token-type-mac": changed(HOOK, lambda r: r["fhirAuthorization"].update(token_type="MAC")),
    "expires-in-string": changed(HOOK, lambda r: r["fhirAuthorization"].update(expires_in="300")),
    "expires-in-true": changed(HOOK, lambda r: r["fhirAuthorization"].update(expires_in=True)),
    "no-subject": changed(HOOK, lambda r: r["fhirAuthorization"].pop("subject")),
    "context-string": changed(HOOK, lambda r: r.update(context="scn-1")),
    "no-patient-id": changed(HOOK, lambda r: r["context"].pop("patientId")),
    "patient-id-slash": changed(HOOK, lambda r: r["context"].update(patientId="a/b")),
    "patient-id-65": changed(HOOK, lambda r: r["context"].update(patientId="a" * 65)),
    "encounter-id-space": changed(HOOK, lambda r: r["context"].update(encounterId="a b")),
    "user-id-empty": changed(HOOK, lambda r: r["context"].update(userId="")),
    "draft-orders-not-bundle": changed(
        ORDER_SIGN, lambda r: r["context"]["draftOrders"].update(resourceType="List")
    ),
    "draft-orders-entry-object": changed(ORDER_SIGN, lambda r: r["context"]["draftOrders"].update(entry={})),
    "prefetch-string": changed(HOOK, lambda r: r["prefetch"].update(observations="<html>")),
    "prefetch-list": changed(HOOK, lambda r: r.update(prefetch=[])),
}

FEEDBACK_PAYLOADS: dict[str, Any] = {
    "accepted": ACCEPTED,
    "overridden-with-reason": OVERRIDDEN,
    "overridden-bare": changed(OVERRIDDEN, lambda p: item(p).pop("overrideReason")),
    "overridden-with-suggestions": changed(ACCEPTED, lambda p: item(p).update(outcome="overridden")),
    "accepted-without-suggestions": changed(ACCEPTED, lambda p: item(p).pop("acceptedSuggestions")),
    "accepted-with-override-reason": changed(ACCEPTED, lambda p: item(p).update(overrideReason={})),
    "outcome-ignored": changed(ACCEPTED, lambda p: item(p).update(outcome="ignored")),
    "no-card": changed(OVERRIDDEN, lambda p: item(p).pop("card")),
    "card-101": changed(OVERRIDDEN, lambda p: item(p).update(card="c" * 101)),
    "timestamp-short": changed(OVERRIDDEN, lambda p: item(p).update(outcomeTimestamp="202")),
    "reason-without-system": changed(OVERRIDDEN, lambda p: item(p)["overrideReason"]["reason"].pop("system")),
    "suggestion-without-id": changed(ACCEPTED, lambda p: item(p).update(acceptedSuggestions=[{}])),
    "empty": {"feedback": []},
    "101-items": {"feedback": [item(OVERRIDDEN)] * 101},
    "no-feedback": {},
}


def published(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS_DIR / "cds-hooks" / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def marshmallow_accepts(schema: type[Schema], payload: Any) -> bool:
    try:
        load(schema, payload, "test")
    except InvalidInput:
        return False
    return True


@pytest.mark.parametrize(
    ("schema", "file", "payload"),
    [
        *[
            pytest.param(HookRequestSchema, "hook-request.schema.json", p, id=f"hook-{name}")
            for name, p in HOOK_PAYLOADS.items()
        ],
        *[
            pytest.param(FeedbackRequestSchema, "feedback.schema.json", p, id=f"feedback-{name}")
            for name, p in FEEDBACK_PAYLOADS.items()
        ],
    ],
)
def test_the_published_json_schema_agrees_with_the_service(
    schema: type[Schema], file: str, payload: Any
) -> None:
    assert marshmallow_accepts(schema, payload) == published(file).is_valid(payload)


def test_the_corpus_holds_both_verdicts() -> None:
    """The agreement above would hold trivially if every payload passed (or failed) both."""
    verdicts = [marshmallow_accepts(HookRequestSchema, p) for p in HOOK_PAYLOADS.values()]
    verdicts += [marshmallow_accepts(FeedbackRequestSchema, p) for p in FEEDBACK_PAYLOADS.values()]
    assert verdicts.count(True) >= 7 and verdicts.count(False) >= 30


@pytest.mark.parametrize(
    ("payload", "locations"),
    [
        (HOOK_PAYLOADS["not-an-object"], [None]),
        (HOOK_PAYLOADS["no-patient-id"], ["context/patientId"]),
        (HOOK_PAYLOADS["prefetch-string"], ["prefetch/observations"]),
        (HOOK_PAYLOADS["authorization-without-server"], ["fhirServer"]),
        (HOOK_PAYLOADS["draft-orders-not-bundle"], ["context/draftOrders/resourceType"]),
        (
            changed(HOOK, lambda r: [r.pop("hookInstance"), r["context"].update(userId=1)]),
            ["context/userId", "hookInstance"],
        ),
    ],
)
def test_a_bad_hook_request_is_a_400_naming_each_path(payload: Any, locations: list[str | None]) -> None:
    with pytest.raises(InvalidInput) as raised:
        hook_request(payload)
    assert raised.value.status == 400
    assert [p.location for p in raised.value.problems] == locations
    for problem in raised.value.problems:
        assert problem.message.startswith(f"{problem.location or '(root)'}: ")


@pytest.mark.parametrize("field", ["patientId", "encounterId"])
def test_an_id_with_a_final_newline_is_a_400(field: str) -> None:
    """In Python ``$`` also matches before a final newline, so ``re.match`` took "scn-1\\n" as a FHIR id;
    the published pattern, read as ECMA-262 (JSON Schema 2020-12 Validation §6.3.3), never did."""
    with pytest.raises(InvalidInput) as raised:
        hook_request(changed(HOOK, lambda r: r["context"].update({field: "scn-1\n"})))
    assert [p.location for p in raised.value.problems] == [f"context/{field}"]
    assert hook_request(changed(HOOK, lambda r: r["context"].update({field: "scn-1"})))


def test_a_bad_feedback_item_is_named_by_its_index() -> None:
    payload = {"feedback": [item(OVERRIDDEN)] * 11 + [{"outcome": "accepted", "card": "c"}]}
    with pytest.raises(InvalidInput) as raised:
        feedback_request(payload)
    assert [p.location for p in raised.value.problems] == ["feedback/11/outcomeTimestamp"]


def test_at_most_twenty_problems_are_named() -> None:
    with pytest.raises(InvalidInput) as raised:
        feedback_request({"feedback": [{"outcome": "overridden"}] * 30})
    assert len(raised.value.problems) == 20
    assert raised.value.problems[2].location == "feedback/1/card"  # index order: 1 before 10


def test_flatten_orders_indexes_as_numbers_and_drops_the_dict_value_level() -> None:
    messages = {"a": {10: {"b": ["x"]}, 2: {"_schema": ["y"]}}, "m": {"k": {"value": ["z"]}}}
    assert flatten(messages) == [(("a", 2), "y"), (("a", 10, "b"), "x"), (("m", "k"), "z")]


def test_a_valid_request_loads_with_its_extra_fields() -> None:
    loaded = hook_request(HOOK_PAYLOADS["extra-fields"])
    assert loaded["extension"] == {"x": 1} and loaded["future"] == [1]
    assert loaded["context"] == HOOK["context"] and loaded["prefetch"] == HOOK["prefetch"]
