"""parse_json's quick duplicate-key check against its strict per-object parse (the reference).

The quick path counts colons; these JSON texts are written by hand so they can hold what a serializer never
writes: repeated keys (nested too), colons in keys and values, colons spelled as the escape \\u003a, lone
surrogates, numbers beyond 64 bits and non-finite constants. Whatever the text, parse_json must return what
the strict parse returns, or raise the very error it raises.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import InvalidInput
from service.intake.json_body import _strict, parse_json

# few keys, so objects often repeat one; colons and their escapes in keys and in values
KEYS = st.sampled_from(["a", "b", ":", "a:b", "\\u003a", "\\u003A", "x\\u003ay", "\\ud800", "\\\\u003a"])
STRINGS = st.text(alphabet=':a"\\\u00e9\U0001f600\ud800', max_size=6).map(json.dumps) | KEYS.map(
    lambda k: f'"{k}"'
)
SCALARS = (
    STRINGS
    | st.integers(min_value=-(2**70), max_value=2**70).map(str)
    | st.sampled_from(["true", "false", "null", "1.5", "1e400", "NaN", "-Infinity", "0.1e-3"])
)


def _object(members: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f'"{key}" :{value}' for key, value in members) + "}"


JSON_TEXTS = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(KEYS, children), max_size=4).map(_object)
    ),
    max_leaves=12,
)


def _outcome(parse: Any, text: str) -> tuple[str, Any]:
    try:
        return "value", parse(text)
    except InvalidInput as exc:
        return "error", str(exc)


@given(JSON_TEXTS)
def test_parse_json_answers_as_the_strict_parse_does(text: str) -> None:
    assert _outcome(parse_json, text) == _outcome(_strict, text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 1}',
        '{"a": "x:y", "a": 2}',  # the lost member held a colon in a string
        '{"a:": 1, "a:": 2}',  # and in its key
        '{"a": {"b": 1}, "c": [{"d": 1, "d": 2}]}',
        '{"\\u003a": 1, ":": 2}',  # two spellings of one key
        '{"a": NaN, "a": 1}',  # a constant before the repeat: the strict parse says which comes first
        '{"a": 1, "a": 2, "b": 1e400}',
    ],
)
def test_a_repeated_key_is_refused_with_the_strict_parse_message(text: str) -> None:
    with pytest.raises(InvalidInput) as quick:
        parse_json(text)
    assert _outcome(_strict, text) == ("error", str(quick.value))
