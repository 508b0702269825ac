"""The Bundle as a whole (rules.md §1, §4): one patient, conflicts, evaluation time, limits; and the readers
underneath it: the $assess request forms, strict JSON and FHIR dates."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.assess import Assessor
from service.errors import InvalidInput, NoFacts, TooLarge, Unprocessable
from service.fhir_values import parse_datetime
from service.intake.bundle import Intake, read_bundle, resolve
from service.intake.json_body import parse_json
from service.intake.readings import Reading
from service.intake.request import unwrap
from service.rules.facts import Evidence
from tests.support import TS, bundle_of, observation

UTC = dt.UTC
URN_0 = "urn:uuid:00000000-0000-0000-0000-000000000000"  # bundle_of's fullUrl of entry 0
PATIENT = {"resourceType": "Patient", "id": "p1"}
CONDITION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}
UNRELATED = {  # an Observation of no neckcheck fact (body temperature), and without a subject
    "resourceType": "Observation",
    "id": "temp",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
    "valueQuantity": {"value": 37.0, "system": "http://unitsofmeasure.org", "code": "Cel"},
}


def read(
    bundle: Any, *, as_of: dt.datetime | None = None, now: dt.datetime | None = None, max_entries: int = 1000
) -> Intake:
    a = Assessor.load()
    return read_bundle(bundle, a.book, a.table, as_of=as_of, max_entries=max_entries, now=now)


def value(intake: Intake, fact: str) -> Any:
    found = intake.facts.get(fact)
    return "missing" if found is None else found.value


def untimed(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without effectiveDateTime: a reading with no time."""
    return {k: v for k, v in resource.items() if k != "effectiveDateTime"}


def at(hour: int) -> str:
    return f"2026-03-10T{hour:02d}:00:00Z"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# --- one patient per request ------------------------------------------------------------------------------


def test_two_subjects_are_unprocessable_naming_each_entry() -> None:
    bundle = bundle_of(
        observation("headache", True, patient="p1"), observation("dizziness", True, patient="p2")
    )
    with pytest.raises(Unprocessable, match="one patient per request") as caught:
        read(bundle)
    locations = {p.location for p in caught.value.problems}
    assert {"Bundle.entry[0].resource", "Bundle.entry[1].resource"} <= locations
    assert "Patient/p1" in str(caught.value)
    assert "Patient/p2" in str(caught.value)


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/p1",
        URN_0,
        "http://x/fhir/Patient/p1",
        "https://ehr.example.org/fhir/Patient/p1/_history/3",
    ],
)
def test_references_to_the_same_patient_are_one_subject(reference: str) -> None:
    bundle = bundle_of(
        PATIENT,
        observation("headache", True, subject={"reference": reference}),
        observation("dizziness", False),
    )
    assert read(bundle).subject == {"reference": "Patient/p1"}


def test_an_observation_giving_a_fact_without_a_subject_is_unprocessable_naming_it() -> None:
    no_subject = observation("headache", True)
    del no_subject["subject"]
    with pytest.raises(Unprocessable, match=r"Bundle\.entry\[1\]\.resource has no subject") as caught:
        read(bundle_of(observation("dizziness", False), no_subject))
    assert [p.location for p in caught.value.problems] == ["Bundle.entry[1].resource.subject"]


def test_an_unrelated_observation_without_a_subject_is_fine() -> None:
    intake = read(bundle_of(observation("headache", True), UNRELATED))
    assert value(intake, "headache") is True
    assert "Bundle.entry[1].resource" in [s.location for s in intake.skipped]


# --- conflicts (rules.md §4) -------------------------------------------------------------------------------


def resolved(fact: str, *readings: tuple[Any, str | None]) -> Any:
    """The value ``resolve`` keeps from (value, time) readings of one fact, each from its own Observation."""
    a = Assessor.load()
    given_readings = [
        Reading(
            fact,
            v,
            None if when is None else parse_datetime(when, "t"),
            Evidence("Observation", f"Observation/o{i}"),
        )
        for i, (v, when) in enumerate(readings)
    ]
    facts, _ = resolve(given_readings, a.table, utc(2026, 3, 10, 12))
    return facts[fact].value


@pytest.mark.parametrize(
    ("case", "fact", "readings", "expected"),
    [
        ("latest wins: present older, absent newer", "headache", [(True, at(8)), (False, at(9))], False),
        ("latest wins: absent older, present newer", "headache", [(False, at(8)), (True, at(9))], True),
        ("latest wins even when it is unknown", "headache", [(True, at(8)), (None, at(9))], None),
        ("tie: present beats absent", "headache", [(False, at(9)), (True, at(9))], True),
        ("tie: present beats absent, other order", "headache", [(True, at(9)), (False, at(9))], True),
        ("tie: unknown beats absent", "headache", [(False, at(9)), (None, at(9))], None),
        ("tie: present beats unknown", "headache", [(None, at(9)), (True, at(9))], True),
        (
            "side tie: one-sided beats both",
            "facial-numbness-side",
            [("both", at(9)), ("left", at(9))],
            "left",
        ),
        (
            "side tie: one-sided beats both",
            "facial-numbness-side",
            [("right", at(9)), ("both", at(9))],
            "right",
        ),
        ("side: a newer both still wins", "facial-numbness-side", [("left", at(8)), ("both", at(9))], "both"),
        ("days tie: the longer", "facial-numbness-days", [(20, at(9)), (3, at(9))], 20),
        ("days: the latest", "facial-numbness-days", [(20, at(8)), (3, at(9))], 3),
        ("no time: present beats a newer absent", "headache", [(True, None), (False, at(9))], True),
        ("no time: a timed present still wins", "headache", [(False, None), (True, at(9))], True),
        ("no time on either: present", "headache", [(False, None), (True, None)], True),
        (
            "no time: one-sided beats a timed both",
            "facial-numbness-side",
            [("left", None), ("both", at(9))],
            "left",
        ),
        ("no time: the longer duration", "facial-numbness-days", [(20, None), (3, at(9))], 20),
        ("no time: unknown duration is the worst", "facial-numbness-days", [(None, None), (30, at(9))], None),
    ],
)
def test_conflicts_resolve_to_the_latest_then_the_more_cautious(
    case: str, fact: str, readings: list[tuple[Any, str | None]], expected: Any
) -> None:
    assert resolved(fact, *readings) == expected


def test_a_resolved_conflict_is_one_sentence_naming_the_fact() -> None:
    old = observation("facial-numbness", True, rid="old", when=at(8))
    new = observation("facial-numbness", False, rid="new", when=at(9))
    intake = read(bundle_of(old, new))
    assert value(intake, "facial-numbness") is False
    (sentence,) = intake.conflicts
    assert "facial numbness" in sentence
    assert intake.facts["facial-numbness"].conflict == sentence
    assert [e.reference for e in intake.facts["facial-numbness"].evidence] == ["Observation/new"]


def test_a_reading_without_time_ties_with_everything_in_a_bundle() -> None:
    present = untimed(observation("headache", True, rid="untimed"))
    intake = read(bundle_of(present, observation("headache", False, rid="newer", when=at(23))))
    assert value(intake, "headache") is True
    assert len(intake.conflicts) == 1


def test_agreeing_readings_are_no_conflict_and_both_are_evidence() -> None:
    intake = read(
        bundle_of(
            observation("headache", True, rid="a", when=at(8)),
            observation("headache", True, rid="b", when=at(9)),
        )
    )
    assert intake.conflicts == ()
    assert [e.reference for e in intake.facts["headache"].evidence] == ["Observation/a", "Observation/b"]


# --- evaluation time (rules.md §1) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "timestamp", "now", "expected"),
    [
        (utc(2026, 1, 1), TS, utc(2027, 1, 1), utc(2026, 1, 1)),
        (None, TS, utc(2027, 1, 1), utc(2026, 3, 10, 9)),
        (None, "2026-03-10T11:00:00+02:00", None, utc(2026, 3, 10, 9)),
        (None, None, utc(2027, 1, 1), utc(2027, 1, 1)),
        (utc(2026, 1, 1), None, utc(2027, 1, 1), utc(2026, 1, 1)),
    ],
)
def test_evaluation_time_is_as_of_then_timestamp_then_now(
    as_of: dt.datetime | None, timestamp: str | None, now: dt.datetime | None, expected: dt.datetime
) -> None:
    untimed = {k: v for k, v in observation("headache", True).items() if k != "effectiveDateTime"}
    bundle = bundle_of(untimed)  # no time at all: used whatever the evaluation time (rules.md §1)
    if timestamp is None:
        del bundle["timestamp"]
    else:
        bundle["timestamp"] = timestamp
    assert read(bundle, as_of=as_of, now=now).as_of == expected


# --- evidence dated after the evaluation time (rules.md §1, contract 1.0.1) ---------------------------

APRIL, MAY = "2026-04-01T09:00:00Z", "2026-05-01T09:00:00Z"


@pytest.mark.parametrize(
    ("as_of", "timestamp", "now", "used", "note"),
    [
        # explicit asOf: "what would the rules have said then?" - the May record did not exist yet
        (utc(2026, 4, 1, 9), None, None, False, "given as asOf: not used"),
        (utc(2026, 4, 1, 9), MAY, None, False, "given as asOf: not used"),
        # implicit evaluation time: a later date is most likely clock skew - never drop a red flag for it
        (None, APRIL, None, True, "(Bundle.timestamp): used all the same"),
        (None, None, utc(2026, 4, 1, 9), True, "(the server clock): used all the same"),
    ],
)
def test_evidence_dated_after_the_evaluation_time(
    as_of: dt.datetime | None, timestamp: str | None, now: dt.datetime | None, used: bool, note: str
) -> None:
    bundle = bundle_of(observation("weakness", True, when=MAY), observation("headache", True, when=APRIL))
    if timestamp is None:
        del bundle["timestamp"]
    else:
        bundle["timestamp"] = timestamp
    intake = read(bundle, as_of=as_of, now=now)
    assert ("weakness" in intake.facts) is used
    assert intake.facts["headache"].value is True  # dated at the evaluation time: used either way
    (later,) = [s for s in intake.skipped if "after the evaluation time" in s.reason]
    assert later.location == "Bundle.entry[0].resource" and note in later.reason
    assert "2026-05-01T09:00:00" in later.reason


def test_an_untimed_resource_is_used_even_with_an_explicit_as_of() -> None:
    untimed = {k: v for k, v in observation("weakness", True).items() if k != "effectiveDateTime"}
    intake = read(bundle_of(untimed), as_of=utc(2020, 1, 1))
    assert intake.facts["weakness"].value is True
    assert not any("after the evaluation time" in s.reason for s in intake.skipped)


def test_only_later_evidence_under_an_explicit_as_of_is_no_facts() -> None:
    with pytest.raises(NoFacts, match="given as asOf: not used"):
        read(bundle_of(observation("weakness", True, when=MAY)), as_of=utc(2026, 4, 1))


def test_without_any_time_the_server_clock_is_used() -> None:
    bundle = bundle_of(observation("headache", True))
    del bundle["timestamp"]
    before = dt.datetime.now(UTC).replace(microsecond=0)
    got = read(bundle).as_of
    assert before <= got <= dt.datetime.now(UTC)


# --- limits and shape ---------------------------------------------------------------------------------------


def test_more_entries_than_the_limit_is_too_large() -> None:
    bundle = bundle_of(*(observation("headache", True, rid=f"o{i}") for i in range(3)))
    assert value(read(bundle, max_entries=3), "headache") is True
    with pytest.raises(TooLarge, match="limit is 2"):
        read(bundle, max_entries=2)


@pytest.mark.parametrize(
    ("shape", "body"),
    [
        ("no entries", {"resourceType": "Bundle", "type": "collection", "entry": []}),
        ("no entry field", {"resourceType": "Bundle", "type": "collection"}),
        ("not a Bundle", {"resourceType": "Patient", "id": "p1"}),
        ("no resourceType", {"entry": [{"resource": observation("headache")}]}),
        ("not an object", [bundle_of(observation("headache"))]),
        ("a string", "Bundle"),
        ("entry is not an array", {"resourceType": "Bundle", "entry": {"resource": observation("headache")}}),
        (
            "an entry is not an object",
            {"resourceType": "Bundle", "entry": [{"resource": observation("headache")}, 3]},
        ),
        (
            "an entry resource is not an object",
            {"resourceType": "Bundle", "entry": [{"resource": "Observation"}]},
        ),
        (
            "an entry resource without resourceType",
            {"resourceType": "Bundle", "entry": [{"resource": {"id": "x"}}]},
        ),
    ],
)
def test_a_body_that_is_not_a_readable_bundle_is_a_400(shape: str, body: Any) -> None:
    with pytest.raises(InvalidInput):
        read(body)


def test_an_entry_that_is_not_an_object_is_named() -> None:
    bundle = bundle_of(observation("headache", True))
    bundle["entry"].append("Observation/x")
    with pytest.raises(InvalidInput, match=r"Bundle\.entry\[1\] must be a JSON object"):
        read(bundle)


def test_unknown_resource_types_are_listed_as_skipped() -> None:
    intake = read(bundle_of(observation("headache", True), CONDITION))
    (skipped,) = intake.skipped
    assert skipped.location == "Bundle.entry[1].resource"
    assert "Condition" in skipped.reason


def test_a_patient_entry_is_used_not_skipped() -> None:
    intake = read(bundle_of(PATIENT, observation("headache", True, subject={"reference": URN_0})))
    assert intake.skipped == ()


def test_the_encounter_an_observation_names_becomes_the_encounter() -> None:
    intake = read(bundle_of(observation("headache", True, encounter={"reference": "Encounter/e1"})))
    assert intake.encounter == {"reference": "Encounter/e1"}


def test_an_encounter_entry_becomes_the_encounter() -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "subject": {"reference": "Patient/p1"},
    }
    intake = read(bundle_of(observation("headache", True), encounter))
    assert intake.encounter == {"reference": "Encounter/e1"}


def test_an_encounter_of_another_patient_is_a_second_subject() -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "subject": {"reference": "Patient/p2"},
    }
    with pytest.raises(Unprocessable, match="one patient per request"):
        read(bundle_of(observation("headache", True), encounter))


# --- unwrap: the $assess request forms --------------------------------------------------------------------


def test_a_bundle_passes_through_unwrap_untouched() -> None:
    bundle = bundle_of(observation("headache", True))
    got, as_of, output = unwrap(bundle)
    assert (got, as_of, output) == (bundle, None, None)
    assert got is bundle


def test_parameters_give_the_bundle_and_as_of() -> None:
    bundle = bundle_of(observation("headache", True))
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "bundle", "resource": bundle},
            {"name": "asOf", "valueDateTime": "2026-03-01T10:00:00+01:00"},
            {"name": "_output", "valueCode": "transaction"},
        ],
    }
    assert unwrap(parameters) == (bundle, utc(2026, 3, 1, 9), "transaction")


@pytest.mark.parametrize(
    ("shape", "parameter"),
    [
        ("no parameter at all", None),
        ("only asOf", [{"name": "asOf", "valueDateTime": TS}]),
        ("bundle part without a resource", [{"name": "bundle", "valueString": "{}"}]),
        (
            "asOf without a value",
            [{"name": "bundle", "resource": {"resourceType": "Bundle"}}, {"name": "asOf"}],
        ),
        (
            "asOf that is not a dateTime",
            [
                {"name": "bundle", "resource": {"resourceType": "Bundle"}},
                {"name": "asOf", "valueDateTime": "today"},
            ],
        ),
        ("parameter is not an array", {"name": "bundle"}),
    ],
)
def test_parameters_that_cannot_be_unwrapped_are_a_400(shape: str, parameter: Any) -> None:
    body: dict[str, Any] = {"resourceType": "Parameters"}
    if parameter is not None:
        body["parameter"] = parameter
    with pytest.raises(InvalidInput):
        unwrap(body)


# --- parse_json ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "body"),
    [
        ("NaN", b'{"value": NaN}'),
        ("Infinity", b'{"value": Infinity}'),
        ("-Infinity", b"[-Infinity]"),
        ("duplicate keys", b'{"resourceType": "Bundle", "resourceType": "Parameters"}'),
        ("duplicate keys, nested", b'{"entry": [{"a": 1, "a": 1}]}'),
        ("not UTF-8", b'{"id": "\xff\xfe"}'),
        ("Latin-1", '{"id": "Jos\u00e9"}'.encode("latin-1")),
        ("empty", b""),
        ("only whitespace", b"  \n\t "),
        ("empty text", ""),
        ("5000 deep", b"[" * 5000 + b"]" * 5000),
        ("5000 deep objects", b'{"a":' * 5000 + b"1" + b"}" * 5000),
        ("truncated", b'{"resourceType": "Bundle"'),
        ("trailing data", b"{} {}"),
        ("single quotes", b"{'a': 1}"),
    ],
)
def test_a_body_that_is_not_strict_json_is_a_400(shape: str, body: bytes | str) -> None:
    with pytest.raises(InvalidInput):
        parse_json(body)


def test_parse_json_reads_utf8_bytes_and_text_alike() -> None:
    text = '{"resourceType": "Bundle", "id": "Jos\u00e9", "n": [1, 2.5, true, null]}'
    expected = {"resourceType": "Bundle", "id": "Jos\u00e9", "n": [1, 2.5, True, None]}
    assert parse_json(text) == parse_json(text.encode("utf-8")) == expected


def test_an_integer_too_long_to_convert_is_a_400() -> None:
    with pytest.raises(InvalidInput):
        parse_json(b'{"value": ' + b"9" * 5000 + b"}")


def test_a_number_that_overflows_to_infinity_is_a_400() -> None:
    with pytest.raises(InvalidInput):
        parse_json(b'{"value": 1e400}')


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=25,
)


@given(JSON_VALUES)
def test_parse_json_reads_back_any_json_value(v: Any) -> None:
    assert parse_json(json.dumps(v)) == v
    assert parse_json(json.dumps(v, ensure_ascii=False).encode("utf-8")) == v


@given(st.binary())
def test_parse_json_on_any_bytes_returns_or_says_invalid_input(body: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        parse_json(body)


# --- parse_datetime -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026", utc(2026, 1, 1)),
        ("2026-03", utc(2026, 3, 1)),
        ("2026-03-10", utc(2026, 3, 10)),
        ("2026-03-10T09:00:00Z", utc(2026, 3, 10, 9)),
        ("2026-03-10T09:00:00+02:00", utc(2026, 3, 10, 7)),
        ("2026-03-10T01:30:00+02:00", utc(2026, 3, 9, 23, 30)),
        ("2026-03-10T09:00:00-05:30", utc(2026, 3, 10, 14, 30)),
        ("2026-03-10T09:00:00+00:00", utc(2026, 3, 10, 9)),
        ("2026-03-10T09:00:00.250Z", utc(2026, 3, 10, 9, 0, 0, 250000)),
        ("2026-03-10T09:00:00", utc(2026, 3, 10, 9)),  # no zone: read as UTC (documented leniency)
        ("2024-02-29", utc(2024, 2, 29)),
        # a fraction is read as digits, not through a float (float('.000249') * 1e6 == 248.99...)
        ("2026-03-10T09:00:00.000249Z", utc(2026, 3, 10, 9, 0, 0, 249)),
    ],
)
def test_valid_fhir_dates_and_datetimes_are_utc(text: str, expected: dt.datetime) -> None:
    got = parse_datetime(text, "t")
    assert got == expected
    assert got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-13-01",
        "2026-02-30",
        "2025-02-29",
        "yesterday",
        "2026-03-10T25:00:00Z",
        "2026-03-10T24:00:00Z",
        "2026-03-10T09:60:00Z",
        "0000-01-01",
        "",
        "2026-3-10",
        "26-03-10",
        "2026-03-10T09:00Z",
        "2026-03-10 09:00:00Z",
        "2026-03-10T09:00:00+15:00",
        "2026-03-10T09:00:00+02:60",
        "10/03/2026",
        "2026-03-10\n",
        "\u0662\u0660\u0662\u0666",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-01:00",
    ],
)
def test_invalid_dates_are_a_400_naming_the_location(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_datetime(text, "Bundle.timestamp")
    assert [p.location for p in caught.value.problems] == ["Bundle.timestamp"]


@given(st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)))
def test_parse_datetime_reads_back_any_isoformat(d: dt.datetime) -> None:
    assert parse_datetime(d.isoformat(), "t") == d


@given(st.text())
def test_parse_datetime_on_any_text_returns_or_says_invalid_input(text: str) -> None:
    with contextlib.suppress(InvalidInput):
        parse_datetime(text, "t")
