"""An export line is read exactly as an HTTP body is (json_body.parse_json), fast path or not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import InvalidInput
from service.intake.json_body import parse_json
from service.screen.records import ASSESS, BLANK, COMPARE, MALFORMED, NO_PATIENT, SKIP, classify, load


def read(reader: Any, raw: bytes) -> Any:
    try:
        return reader(raw)
    except InvalidInput as error:
        return f"refused: {error}"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',  # orjson would keep the last silently
        b'{"a" :1,"a":2}',  # whitespace before the colon
        b'{"b":{"c":[{"d":1},{"d":2,"d":3}]}}',  # deep in a list
        b'{"":1,"":2}',
        b'{"a\\\\":1,"a\\\\":2}',  # a key ending in an escaped backslash
        b'{"a": ":x", "b": ":y"}',  # strings starting with a colon
        b'{"x":"he said \\":\\" ok"}',
        b'{"a":123456789012345678901234567890}',  # orjson would round it to a float
        b'{"a":[1,{"b":-99999999999999999999}]}',
        b'{"a":1e400}',
        b'{"a":NaN}',
        b'{"a":"\\ud800"}',  # a lone surrogate: stdlib reads it, orjson does not
        b'\xff{"a":1}',
        b'{"a":1}x',
        b'"just a string"',
        b"[1, 2.5, true, null]",
    ],
)
def test_load_reads_a_line_as_parse_json_does(raw: bytes) -> None:
    assert read(load, raw) == read(parse_json, raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


@given(json_values, st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]))
def test_load_agrees_with_parse_json_on_any_json(value: Any, separators: tuple[str, str]) -> None:
    raw = json.dumps(value, separators=separators).encode("utf-8")
    assert read(load, raw) == read(parse_json, raw)


@given(st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=4), st.integers(0, 3))
def test_a_duplicate_key_is_always_refused(members: dict[str, int], which: int) -> None:
    keys = list(members)
    again = keys[which % len(keys)]
    text = json.dumps(members)[:-1] + ", " + json.dumps(again) + ": 0}"
    assert str(read(load, text.encode())).startswith("refused: duplicate JSON property")


def test_classify_says_what_each_line_is() -> None:
    obs = {"resourceType": "Observation", "subject": {"reference": "https://ehr.example.org/fhir/Patient/p1"}}
    assert classify(json.dumps(obs).encode()).patient == "Patient/p1"  # the same key as the intake's
    assert classify(b'{"resourceType": "Patient", "id": "p2"}').patient == "Patient/p2"
    assert (
        classify(b'{"resourceType": "ServiceRequest", "subject": {"reference": "Patient/p3"}}').kind
        == COMPARE
    )
    assert classify(json.dumps(obs).encode()).kind == ASSESS
    assert classify(b'{"resourceType": "Condition"}').kind == SKIP
    assert (
        classify(b'{"resourceType": "Observation", "subject": {"reference": "Group/g"}}').kind == NO_PATIENT
    )
    assert classify(b'{"resourceType": "Patient", "id": "bad id"}').kind == NO_PATIENT
    assert classify(b"   ").kind == BLANK
    for bad in (b"[]", b"{}", b'{"resourceType": 5}', b'{"a":1,"a":2}', b"{"):
        line = classify(bad)
        assert line.kind == MALFORMED and line.problem
