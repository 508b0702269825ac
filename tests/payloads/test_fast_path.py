"""The fast path of a payload is sound: what it accepts, marshmallow accepts and loads the same way.

Generated hook requests are valid ones with faults mixed in where JSON Schema and marshmallow read values
differently: wrong types, nulls, missing fields, ``1.0`` and ``true`` for an integer, ids with a trailing
newline, ``fhirAuthorization`` without ``fhirServer``, extra fields, prefetch values that are not objects.
The property: fast-accept implies marshmallow-accept with an equal result (types included: ``1 == 1.0 ==
True`` in Python, not in JSON); so marshmallow-reject implies fast-decline. The fast path may decline more.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from service.errors import InvalidInput
from service.payloads import compiled
from service.payloads.cds_hooks import (
    FEEDBACK_FILE,
    FHIR_ID,
    HOOK_REQUEST_FILE,
    FeedbackRequestSchema,
    HookRequestSchema,
    hook_request,
)
from service.payloads.fast_path import fast_loader
from tests.payloads.test_payloads import FEEDBACK_PAYLOADS, HOOK, HOOK_PAYLOADS, ORDER_SIGN, changed

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
ABSENT = object()  # a field left out


def mostly(good: st.SearchStrategy[Any], tricky: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Nine times in ten ``good`` (so whole requests are often valid), else ``tricky``."""
    return st.integers(0, 9).flatmap(lambda n: good if n < 9 else tricky)


NOTHING: st.SearchStrategy[Any] = st.nothing()


def field(good: st.SearchStrategy[Any], tricky: st.SearchStrategy[Any] = NOTHING) -> st.SearchStrategy[Any]:
    """A member's value: mostly good; else a tricky value, left out, null or any other JSON value."""
    return mostly(good, st.one_of(tricky, st.just(ABSENT), st.none(), JSON))


def obj(**members: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object of these members (each maybe absent) and maybe a few extra fields."""
    extra = st.dictionaries(st.text(max_size=6).filter(lambda k: k not in members), JSON, max_size=2)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        out = {name: draw(strategy) for name, strategy in members.items()}
        return {k: v for k, v in out.items() if v is not ABSENT} | draw(extra)

    return build()


GOOD_ID = st.from_regex(FHIR_ID, fullmatch=True)
BAD_IDS = st.one_of(
    GOOD_ID.map(lambda s: s + "\n"),  # Python's $ takes it (the compiled pattern's search); WholeText not
    st.sampled_from(["", "a/b", "a b", "a" * 65, "\u0661\u0662", "Patient/1", "\na"]),
    st.text(max_size=70),
)
STRING = st.text(min_size=1, max_size=8)
BAD_STRINGS = st.sampled_from(["", "x" * 200, "x" * 201, "\n"])
BAD_INTEGERS = st.sampled_from([True, False, 1.0, 300.0, 1.5, "300", 2**70, -0.0])
TOKEN = st.from_regex(r"[A-Za-z0-9\-._~+/]{1,12}={0,2}", fullmatch=True)  # RFC 6750 §2.1 b64token
BAD_TOKENS = st.one_of(
    TOKEN.map(lambda s: s + "\n"), st.sampled_from(["", "t\u00f6k\u20acn", "a b", "=abc", "\ud83d\ude00"])
)
AUTHORIZATION = obj(
    access_token=field(TOKEN, BAD_TOKENS),
    token_type=field(st.just("Bearer"), st.sampled_from(["bearer", "MAC", "Bearer\n"])),
    expires_in=field(st.integers(), BAD_INTEGERS),
    scope=field(st.text(max_size=8)),
    subject=field(st.text(max_size=8)),
    patient=field(GOOD_ID, BAD_IDS),
)
DRAFT_ORDERS = obj(
    resourceType=field(st.just("Bundle"), st.sampled_from(["List", "bundle", "Bundle\n"])),
    entry=field(st.lists(JSON, max_size=3)),
)
CONTEXT = obj(
    userId=field(STRING, BAD_STRINGS),
    patientId=field(GOOD_ID, BAD_IDS),
    encounterId=field(GOOD_ID, BAD_IDS),
    draftOrders=field(DRAFT_ORDERS),
)
PREFETCH = st.dictionaries(
    st.sampled_from(["patient", "observations", "questionnaireResponses", "other"]),
    mostly(st.none() | st.dictionaries(st.text(max_size=6), JSON, max_size=3), JSON),
    max_size=3,
)
HOOK_REQUESTS = mostly(
    obj(
        hook=field(st.sampled_from(["patient-view", "order-sign"]), st.sampled_from(["encounter-start", ""])),
        hookInstance=field(STRING, BAD_STRINGS),
        fhirServer=field(
            st.sampled_from(["https://ehr.example/fhir", "http://x", "https://\n"]),
            st.sampled_from(["ftp://x", "HTTPS://x", " https://x"]),
        ),
        fhirAuthorization=field(AUTHORIZATION),
        context=field(CONTEXT),
        prefetch=field(PREFETCH),
    ),
    JSON,
)
FEEDBACK_ITEM = obj(
    card=field(STRING, BAD_STRINGS),
    outcome=field(st.sampled_from(["accepted", "overridden"]), st.sampled_from(["ignored", "Accepted"])),
    outcomeTimestamp=field(st.text(min_size=4, max_size=8), st.sampled_from(["", "202"])),
    acceptedSuggestions=field(st.lists(obj(id=field(st.text(max_size=8))), max_size=2)),
    overrideReason=field(
        obj(
            reason=field(obj(code=field(st.text(max_size=4)), system=field(st.text(max_size=4)))),
            userComment=field(st.text(max_size=8)),
        )
    ),
)
FEEDBACK_REQUESTS = mostly(
    obj(feedback=field(st.lists(FEEDBACK_ITEM, min_size=1, max_size=3), st.just([]))),
    JSON,
)


def marshmallow_load(schema: type[Schema], payload: Any) -> dict[str, Any] | None:
    try:
        loaded: dict[str, Any] = compiled(schema).load(copy.deepcopy(payload))
    except ValidationError:
        return None
    return loaded


def as_json(value: Any) -> str:
    """Equality as JSON sees it: ``1``, ``1.0`` and ``true`` differ."""
    return json.dumps(value, sort_keys=True)


def assert_sound(schema: type[Schema], published: str, payload: Any) -> bool:
    """Fast-accept implies marshmallow-accept, equal results; fast-decline otherwise. True if fast took it."""
    fast = fast_loader(schema, published)
    assert fast is not None
    before = as_json(payload)
    taken = fast(payload)
    assert as_json(payload) == before, "the fast path changed the caller's payload"
    expected = marshmallow_load(schema, payload)
    if taken is None:
        return False
    assert expected is not None, f"fast path accepted what marshmallow rejects: {payload!r}"
    assert as_json(taken) == as_json(expected)
    declared = list(compiled(schema).load_fields)  # in declaration order, as marshmallow adds them
    assert [k for k in taken if k in declared] == [k for k in expected if k in declared]
    assert taken is not payload
    return True


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOOK_REQUESTS)
def test_the_hook_request_fast_path_never_accepts_what_marshmallow_rejects(payload: Any) -> None:
    taken = assert_sound(HookRequestSchema, HOOK_REQUEST_FILE, payload)
    event("fast path" if taken else "marshmallow")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FEEDBACK_REQUESTS)
def test_the_feedback_fast_path_never_accepts_what_marshmallow_rejects(payload: Any) -> None:
    taken = assert_sound(FeedbackRequestSchema, FEEDBACK_FILE, payload)
    event("fast path" if taken else "marshmallow")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([HOOK, ORDER_SIGN]),
    st.sampled_from(["context", "fhirAuthorization", "prefetch"]),
    st.text(max_size=6),
    JSON,
)
def test_a_valid_request_with_one_member_replaced_stays_sound(
    base: dict[str, Any], part: str, key: str, value: Any
) -> None:
    """Faults deep in realistic requests, where the rest is valid and the fast path would otherwise accept."""
    assert_sound(HookRequestSchema, HOOK_REQUEST_FILE, changed(base, lambda r: r[part].update({key: value})))


@pytest.mark.parametrize(
    ("schema", "file", "payload"),
    [
        *[
            pytest.param(HookRequestSchema, HOOK_REQUEST_FILE, p, id=f"hook-{n}")
            for n, p in HOOK_PAYLOADS.items()
        ],
        *[
            pytest.param(FeedbackRequestSchema, FEEDBACK_FILE, p, id=f"feedback-{n}")
            for n, p in FEEDBACK_PAYLOADS.items()
        ],
    ],
)
def test_the_fast_path_takes_exactly_the_valid_corpus_requests(
    schema: type[Schema], file: str, payload: Any
) -> None:
    """Its reason to exist: every valid request of the corpus skips marshmallow, and no invalid one does."""
    fast = fast_loader(schema, file)
    assert fast is not None
    assert (fast(payload) is not None) == (marshmallow_load(schema, payload) is not None)
    assert_sound(schema, file, payload)


@pytest.mark.parametrize(
    ("change", "fast_takes"),
    [
        (lambda r: r["context"].update(patientId="scn-1\n"), False),  # JSON Schema's search takes it
        (lambda r: r["fhirAuthorization"].update(expires_in=300.0), False),  # JSON Schema integer takes it
        (lambda r: r["fhirAuthorization"].update(expires_in=True), False),
        (lambda r: r["fhirAuthorization"].update(expires_in=2**70), True),
    ],
)
def test_where_json_schema_and_marshmallow_differ_the_fast_path_declines(
    change: Any, fast_takes: bool
) -> None:
    payload = changed(HOOK, change)
    fast = fast_loader(HookRequestSchema, HOOK_REQUEST_FILE)
    assert fast is not None
    assert (fast(payload) is not None) is fast_takes
    assert_sound(HookRequestSchema, HOOK_REQUEST_FILE, payload)


def test_a_declined_request_gets_marshmallows_answer() -> None:
    """Both are 400s naming the field, as marshmallow words them (a final newline passes a ``pattern``
    checked with Python's ``re.search``, but not the service's WholeText)."""
    for change, location in [
        (lambda r: r["context"].update(patientId="scn-1\n"), "context/patientId"),
        (lambda r: r["fhirAuthorization"].update(expires_in=300.0), "fhirAuthorization/expires_in"),
    ]:
        with pytest.raises(InvalidInput) as raised:
            hook_request(changed(HOOK, change))
        assert [p.location for p in raised.value.problems] == [location]


def test_a_schema_the_builder_cannot_mirror_has_no_fast_path() -> None:
    """FeedbackRequestSchema is mirrored; a schema with a default (which the builder does not fill) is not."""
    from marshmallow import fields

    class WithDefault(Schema):
        n = fields.Integer(load_default=1)

    assert fast_loader(FeedbackRequestSchema, FEEDBACK_FILE) is not None
    assert fast_loader(WithDefault, HOOK_REQUEST_FILE) is None
