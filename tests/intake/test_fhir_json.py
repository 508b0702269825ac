"""FHIR JSON rules (R4 §2.6.2) on what the intake reads: the library raises InvalidInput naming the path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B import encounter, observation, parameters, patient, questionnaireresponse
from hypothesis import given
from hypothesis import strategies as st

from service import assess
from service.errors import InvalidInput, Problem
from service.intake.fhir_json import CHOICES, _check_answers, _plain_answers, check_resource, looks_clean
from tests.support import bundle_of
from tests.support import observation as obs

AT = "Bundle.entry[0].resource"


def locations(error: InvalidInput) -> list[str | None]:
    return [p.location for p in error.problems]


def test_the_choice_table_is_the_r4_one() -> None:
    """CHOICES lists the [x] elements of every type the intake reads, as the R4 models define them."""
    models: dict[str, Any] = {
        "Observation": observation.Observation,
        "Observation.component": observation.ObservationComponent,
        "QuestionnaireResponse.item.answer": questionnaireresponse.QuestionnaireResponseItemAnswer,
        "Patient": patient.Patient,
        "Encounter": encounter.Encounter,
        "Parameters.parameter": parameters.ParametersParameter,
    }
    for path, model in models.items():
        assert set(CHOICES[path]) == set(model.get_one_of_many_fields(None)), path


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"id": "a\x00b"}, f"{AT}.id"),
        ({"id": "é"}, f"{AT}.id"),
        ({"valueBoolean": None}, f"{AT}.valueBoolean"),
        ({"valueString": "yes"}, f"{AT}.valueString"),
        ({"effectiveInstant": "2026-03-10T09:00:00Z"}, f"{AT}.effectiveInstant"),
        ({"note": [{"text": "\x1b[31m"}]}, f"{AT}.note[0].text"),
        ({"subject": {"reference": "Patient/p1\n"}}, f"{AT}.subject.reference"),
        ({"encounter": {"reference": "not a reference"}}, f"{AT}.encounter.reference"),
    ],
)
def test_the_library_refuses_what_fhir_json_forbids(change: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        assess(bundle_of(obs("weakness", True, **change)))
    assert where in locations(caught.value)


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/p1",
        "Patient/p1/_history/2",
        "https://ehr.example.org/fhir/Patient/p1",
        "urn:uuid:6f1c1f5e-4b3a-4d0e-9c7e-2b1f0a9d8c7b",
        "urn:oid:1.2.840.113619.2",
        "#p1",
    ],
)
def test_every_kind_of_valid_reference_is_read(reference: str) -> None:
    check_resource(obs("weakness", True, encounter={"reference": reference}), "X")


# --- property: a null or a control character anywhere in a read resource is refused; its path is named -----

_leaves = st.one_of(st.booleans(), st.integers(-1000, 1000), st.text(alphabet="abc xyz", max_size=8))
_json = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "note", "text"]), inner, min_size=1, max_size=3),
    ),
    max_leaves=12,
)


def _paths(value: Any, path: str) -> list[tuple[str, Any, Any]]:
    """(path, container, key) of every place a value sits, to plant something there."""
    found: list[tuple[str, Any, Any]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        where = f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]"
        found.append((where, value, key))
        found += _paths(child, where)
    return found


@given(extra=_json, pick=st.integers(0, 10_000), bad=st.sampled_from([None, "x\x00y", "\x0c"]))
def test_a_planted_null_or_control_character_is_always_found(extra: Any, pick: int, bad: Any) -> None:
    resource = obs("weakness", True, extension=[{"url": "https://example.org/x", "valueString": "ok"}])
    resource["zz"] = copy.deepcopy(extra)  # an element FHIR would not know; only its content matters here
    check_resource(resource, "X")  # clean: no error
    places = _paths(resource["zz"], "X.zz") or [("X.zz", resource, "zz")]
    where, container, key = places[pick % len(places)]
    container[key] = bad
    with pytest.raises(InvalidInput) as caught:
        check_resource(resource, "X")
    assert where in locations(caught.value)


@given(text=st.text(min_size=1, max_size=30))
def test_the_fast_scan_agrees_with_the_exact_rule(text: str) -> None:
    """looks_clean may send a clean string to the exact walk, but never lets a control character by."""
    bad = any(ord(c) < 32 and c not in "\t\r\n" for c in text)
    if bad:
        assert not looks_clean({"text": text})


# --- property: the quick answer check never passes a QuestionnaireResponse the exact walk would refuse -----

_answer_keys = st.sampled_from(["valueBoolean", "valueString", "valueCoding", "xvalueA", "a-valueB", "value"])
_items = st.deferred(
    lambda: st.lists(
        st.fixed_dictionaries(
            {"linkId": st.just("q")},
            optional={
                "answer": st.lists(
                    st.dictionaries(_answer_keys, st.booleans(), max_size=3)
                    | st.fixed_dictionaries({"valueBoolean": st.booleans(), "item": _items}),
                    max_size=3,
                ),
                "item": _items,
            },
        ),
        max_size=3,
    )
)


@given(items=_items)
def test_the_quick_answer_check_agrees_with_the_exact_walk(items: list[Any]) -> None:
    resource = {"resourceType": "QuestionnaireResponse", "status": "completed", "item": items}
    exact: list[Problem] = []
    _check_answers(resource, "X", exact)
    if _plain_answers(resource):
        assert exact == []
    try:
        check_resource(resource, "X", clean=True)
        found: list[str | None] = []
    except InvalidInput as error:
        found = locations(error)
    assert found == [p.location for p in exact][:20]
