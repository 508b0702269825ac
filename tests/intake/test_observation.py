"""Observation shapes of rules.md §4, each read into the right fact value with its evidence."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.assess import Assessor
from service.errors import InvalidInput, Unprocessable
from service.intake.bundle import Intake, read_bundle
from service.intake.observation import general_readings, plain_reading
from service.rules.facts import Evidence
from tests.support import CODES, LOCAL, SIDES, bundle_of, fact_coding, observation

UCUM = "http://unitsofmeasure.org"


def read(*resources: dict[str, Any], as_of: str | None = None) -> Intake:
    a = Assessor.load()
    bundle = bundle_of(*resources)
    if as_of:
        bundle["timestamp"] = as_of
    return read_bundle(bundle, a.book, a.table)


def value(intake: Intake, fact: str) -> Any:
    found = intake.facts.get(fact)
    return "missing" if found is None else found.value


def numbness(**extra: Any) -> dict[str, Any]:
    return observation("facial-numbness", True, rid="fn", **extra)


@pytest.mark.parametrize(
    ("shape", "resource", "expected"),
    [
        ("valueBoolean true", observation("headache", True), True),
        ("valueBoolean false", observation("headache", False), False),
        (
            "Y/N yes",
            observation(
                "headache",
                None,
                valueCodeableConcept={"coding": [{"system": CODES["yesNo"]["system"], "code": "Y"}]},
            ),
            True,
        ),
        (
            "Y/N no",
            observation(
                "headache",
                None,
                valueCodeableConcept={"coding": [{"system": CODES["yesNo"]["system"], "code": "N"}]},
            ),
            False,
        ),
        ("coded finding with no value = present", observation("headache", None), True),
        (
            "dataAbsentReason = unknown",
            observation(
                "headache",
                None,
                dataAbsentReason={
                    "coding": [{"system": CODES["askedUnknown"]["system"], "code": "asked-unknown"}]
                },
            ),
            None,
        ),
        (
            "asked-unknown as the value = unknown",
            observation(
                "headache",
                None,
                valueCodeableConcept={
                    "coding": [{"system": CODES["askedUnknown"]["system"], "code": "asked-unknown"}]
                },
            ),
            None,
        ),
        ("an unreadable value is unknown, never no", observation("headache", None, valueString="nope"), None),
        (
            "local code accepted",
            observation("headache", True, code={"coding": [{"system": LOCAL, "code": "headache"}]}),
            True,
        ),
    ],
)
def test_boolean_values(shape: str, resource: dict[str, Any], expected: Any) -> None:
    assert value(read(resource), "headache") is expected


def test_loinc_symptom_with_the_finding_as_value_is_present() -> None:
    symptom = {
        **observation("vision-change", None),
        "code": {"coding": [CODES["symptom"]]},
        "valueCodeableConcept": {"coding": [fact_coding("vision-change")]},
    }
    intake = read(symptom)
    assert value(intake, "vision-change") is True
    assert intake.facts["vision-change"].evidence[0].reference == "Observation/vision-change-none"


@pytest.mark.parametrize("fact", ["facial-numbness-side", "facial-numbness-days", "facial-numbness-onset"])
def test_a_symptom_observation_naming_a_fact_that_is_no_finding_gives_it_no_value(fact: str) -> None:
    """'Symptom: side of facial numbness' says nothing about the side. Read as present (True) a side was
    "not one-sided" (known), so unknown became no and the result was final without asking the side."""
    symptom = {
        **observation(fact, None),
        "code": {"coding": [CODES["symptom"]]},
        "valueCodeableConcept": {"coding": [fact_coding(fact)]},
    }
    others = [
        observation(f, False) for f in ("vision-change", "slurred-speech", "weakness", "symptoms-worsening")
    ]
    others += [observation("headache", False), observation("dizziness", False), numbness()]
    others += [] if fact == "facial-numbness-days" else [observation("facial-numbness-days", 3)]
    result = Assessor.load().run(bundle_of(*others, symptom))
    assert result.intake.facts[fact].value is None
    assert any(f"{fact}: a Symptom Observation states no value" in s.reason for s in result.intake.skipped)
    if fact == "facial-numbness-side":
        assert not result.decision.final and result.decision.ask_about == ("facial-numbness-side",)


def test_dysarthria_is_accepted_as_slurred_speech() -> None:
    obs = observation(
        "slurred-speech", True, code={"coding": [{"system": "http://snomed.info/sct", "code": "8011004"}]}
    )
    assert value(read(obs), "slurred-speech") is True


def test_a_code_not_in_codes_json_is_not_a_fact() -> None:
    pain_in_face = observation(
        "facial-numbness", True, code={"coding": [{"system": "http://snomed.info/sct", "code": "95668009"}]}
    )
    with pytest.raises(Unprocessable, match="no entry gives any neckcheck fact"):
        read(pain_in_face)


@pytest.mark.parametrize(
    ("status", "used"),
    [
        ("final", True),
        ("preliminary", True),
        ("amended", True),
        ("corrected", True),
        ("entered-in-error", False),
        ("cancelled", False),
        ("registered", False),
    ],
)
def test_status(status: str, used: bool) -> None:
    intake = read(observation("headache", True, status=status), observation("dizziness", False))
    assert value(intake, "headache") == (True if used else "missing")


@pytest.mark.parametrize(
    ("where", "extra"),
    [
        (
            "component",
            {
                "component": [
                    {
                        "code": {"coding": [CODES["laterality"]["attribute"]]},
                        "valueCodeableConcept": {"coding": [SIDES["left"]]},
                    }
                ]
            },
        ),
        ("bodySite", {"bodySite": {"coding": [SIDES["left"]]}}),
    ],
)
def test_side_on_the_numbness_observation(where: str, extra: dict[str, Any]) -> None:
    assert value(read(numbness(**extra)), "facial-numbness-side") == "left"


def test_side_as_its_own_observation() -> None:
    assert (
        value(read(numbness(), observation("facial-numbness-side", "right")), "facial-numbness-side")
        == "right"
    )


@pytest.mark.parametrize(
    ("quantity", "days"),
    [
        ({"value": 3, "code": "d"}, 3),
        ({"value": 2, "code": "wk"}, 14),
        ({"value": 3, "code": "wk"}, 21),
        ({"value": 2.5, "code": "wk"}, 17),
        ({"value": 47, "code": "h"}, 1),
        ({"value": 48, "code": "h"}, 2),
        ({"value": 1, "code": "mo"}, 30),
        ({"value": 14.9, "code": "d"}, 14),
    ],
)
def test_duration_units_in_whole_days_rounded_down(quantity: dict[str, Any], days: int) -> None:
    duration = observation("facial-numbness-days", None, valueQuantity={**quantity, "system": UCUM})
    assert value(read(numbness(), duration), "facial-numbness-days") == days


def test_duration_as_value_integer_and_as_component() -> None:
    assert (
        value(
            read(numbness(), observation("facial-numbness-days", None, valueInteger=9)),
            "facial-numbness-days",
        )
        == 9
    )
    component = {
        "code": {"coding": [fact_coding("facial-numbness-days")]},
        "valueQuantity": {"value": 2, "system": UCUM, "code": "wk"},
    }
    assert value(read(numbness(component=[component])), "facial-numbness-days") == 14


def test_a_unit_that_is_not_ucum_leaves_the_duration_unknown() -> None:
    duration = observation("facial-numbness-days", None, valueQuantity={"value": 20, "unit": "days"})
    assert value(read(numbness(), duration), "facial-numbness-days") is None


def test_onset_from_effective_period_against_as_of() -> None:
    obs = numbness(effectivePeriod={"start": "2026-02-22"})
    del obs["effectiveDateTime"]
    intake = read(obs, as_of="2026-03-10T09:00:00Z")
    assert value(intake, "facial-numbness-days") == 16


def test_a_given_duration_beats_the_onset() -> None:
    obs = numbness(effectivePeriod={"start": "2026-01-01"})
    del obs["effectiveDateTime"]
    assert value(read(obs, observation("facial-numbness-days", 3)), "facial-numbness-days") == 3


def test_onset_after_as_of_is_unprocessable() -> None:
    obs = numbness(effectivePeriod={"start": "2026-04-01"})
    del obs["effectiveDateTime"]
    with pytest.raises(Unprocessable, match="after the evaluation time"):
        read(obs, as_of="2026-03-10T09:00:00Z")


def test_negative_duration_is_unprocessable() -> None:
    with pytest.raises(Unprocessable, match="negative"):
        read(numbness(), observation("facial-numbness-days", None, valueInteger=-1))


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("valueBoolean", "yes"),
        ("code", []),
        ("status", 1),
        ("effectiveDateTime", "yesterday"),
        ("subject", "Patient/1"),
        ("component", {}),
        ("valueQuantity", 3),
    ],
)
def test_a_field_of_the_wrong_type_is_a_400_naming_it(field: str, bad: Any) -> None:
    obs = observation("facial-numbness", True, **{field: bad})
    if field == "valueQuantity":
        obs = observation("facial-numbness-days", None, valueQuantity=bad)
    with pytest.raises(InvalidInput) as caught:
        read(observation("headache", False), obs)
    assert field in str(caught.value)


# --- the plain Observation's one typed pass gives what the general readers give --------------------------

ASSESSOR = Assessor.load()
CODINGS = [c for f in CODES["facts"].values() for c in f["codings"]] + [CODES["symptom"]]
BOOLEAN_FACTS = {name for name, fact in ASSESSOR.table.facts.items() if fact.kind == "bool"}
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4,
)


def mostly(good: Any, *other: Any) -> st.SearchStrategy[Any]:
    """``good`` six times in seven, else one of ``other``."""
    return st.sampled_from([good] * 6 * max(1, len(other)) + list(other))


BOOL_CODINGS = [c for name, f in CODES["facts"].items() for c in f["codings"] if name in BOOLEAN_FACTS]
OTHER_CODINGS = [c for c in CODINGS if c not in BOOL_CODINGS]


@st.composite
def observations(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly plain Observations, each field now and then of another shape, missing, or extra."""
    coding = dict(
        draw(st.sampled_from(BOOL_CODINGS))
        if draw(mostly(True, False))
        else draw(st.sampled_from(OTHER_CODINGS))
    )
    coding = {k: coding[k] for k in ("system", "code", "display") if k in coding}
    coding = draw(
        mostly(coding, {**coding, "userSelected": True}, {"code": coding["code"]}, {**coding, "code": 7})
    )
    code: Any = {"coding": draw(mostly([coding], [coding, coding], [], [7]))}
    code = draw(mostly(code, {**code, "text": "Headache"}, {**code, "text": 7}, "headache", {"coding": "x"}))
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": draw(mostly("final", "amended", "entered-in-error", "registered", 3, None)),
        "code": code,
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": draw(
            mostly(
                "2026-03-10T08:00:00Z", "2026-03-10T08:00:00+02:00", "2026-03-10", "2026-13-40T00:00:00Z", 5
            )
        ),
        "valueBoolean": draw(mostly(True, False, "true", None)),
    }
    if draw(mostly(False, True)):
        resource.pop(draw(st.sampled_from(sorted(resource))))
    resource.update(draw(mostly({}, {"issued": "2026-03-10T09:00:00Z"}, {"dataAbsentReason": {"text": "x"}})))
    if draw(mostly(False, True)):
        resource[draw(st.sampled_from(["component", "bodySite", "valueString", "method", "note"]))] = draw(
            ANY_JSON
        )
    return resource


@settings(max_examples=600)
@given(observations())
def test_the_plain_pass_reads_what_the_general_readers_read(resource: dict[str, Any]) -> None:
    loc, evidence = "Bundle.entry[0].resource", Evidence("Observation", "Observation/o1")
    args = (resource, loc, evidence, ASSESSOR.book, ASSESSOR.table)
    try:
        plain = plain_reading(*args)
    except InvalidInput as plain_error:  # then the general readers refuse it in the same words
        with pytest.raises(InvalidInput) as caught:
            general_readings(*args)
        assert caught.value.problems == plain_error.problems
        return
    if plain is not None:
        assert general_readings(*args) == ([plain], [])


def test_the_generated_observations_are_mostly_plain() -> None:
    """The property above compares something: most drawn Observations take the one typed pass."""
    taken = []

    @settings(max_examples=300, database=None, derandomize=True)  # the same draws every run
    @given(observations())
    def count(resource: dict[str, Any]) -> None:
        try:
            taken.append(
                plain_reading(resource, "r", Evidence("Observation", "o"), ASSESSOR.book, ASSESSOR.table)
            )
        except InvalidInput:
            taken.append(None)

    count()
    assert sum(r is not None for r in taken) > len(taken) / 4
