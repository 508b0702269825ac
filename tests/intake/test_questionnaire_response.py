"""QuestionnaireResponse shapes of rules.md §4 (neckcheck's own Questionnaire), read through read_bundle."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service.assess import Assessor
from service.errors import InvalidInput, Unprocessable
from service.intake.bundle import Intake, read_bundle
from service.rules.facts import Evidence
from tests.support import CODES, SIDES, TS, bundle_of, observation

QUESTIONNAIRE = f"{CODES['canonicalBase']}/Questionnaire/{CODES['questionnaire']['id']}"
YES = {"valueCoding": {"system": CODES["yesNo"]["system"], "code": "Y"}}
NO = {"valueCoding": {"system": CODES["yesNo"]["system"], "code": "N"}}
ASKED_UNKNOWN = {"valueCoding": {"system": CODES["askedUnknown"]["system"], "code": "asked-unknown"}}
FIRST_ANSWER = "Bundle.entry[0].resource.item[0].answer[0]"


def item(link_id: str, *answers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An item; no ``answers`` means the question was left unanswered."""
    out: dict[str, Any] = {"linkId": link_id, **extra}
    if answers:
        out["answer"] = list(answers)
    return out


def response(
    *items: dict[str, Any],
    rid: str = "qr1",
    status: str | None = "completed",
    questionnaire: str | None = QUESTIONNAIRE,
    **extra: Any,
) -> dict[str, Any]:
    qr: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "subject": {"reference": "Patient/p1"},
        "authored": TS,
        "item": list(items),
        **extra,
    }
    if status is not None:
        qr["status"] = status
    if questionnaire is not None:
        qr["questionnaire"] = questionnaire
    return qr


def read(*resources: dict[str, Any], timestamp: str = TS) -> Intake:
    a = Assessor.load()
    return read_bundle(bundle_of(*resources, timestamp=timestamp), a.book, a.table)


def value(intake: Intake, fact: str) -> Any:
    found = intake.facts.get(fact)
    return "missing" if found is None else found.value


@pytest.mark.parametrize(
    ("fact", "answer", "expected"),
    [
        ("headache", {"valueBoolean": True}, True),
        ("headache", {"valueBoolean": False}, False),
        ("headache", YES, True),
        ("headache", NO, False),
        ("headache", ASKED_UNKNOWN, None),
        ("facial-numbness-side", {"valueCoding": SIDES["left"]}, "left"),
        ("facial-numbness-side", {"valueCoding": SIDES["right"]}, "right"),
        ("facial-numbness-side", {"valueCoding": SIDES["both"]}, "both"),
        ("facial-numbness-side", ASKED_UNKNOWN, None),
        ("facial-numbness-days", {"valueInteger": 20}, 20),
        ("facial-numbness-days", {"valueInteger": 0}, 0),
        ("facial-numbness-days", ASKED_UNKNOWN, None),
        ("neck-pain-severity", {"valueInteger": 7}, 7),
        ("neck-pain-severity", {"valueInteger": 0}, 0),
        ("neck-pain-severity", {"valueInteger": 10}, 10),
        ("neck-pain-severity", {"valueDecimal": 5.5}, 5.5),
    ],
)
def test_answer_values(fact: str, answer: dict[str, Any], expected: Any) -> None:
    intake = read(response(item("facial-numbness", {"valueBoolean": True}), item(fact, answer)))
    assert value(intake, fact) == expected
    assert type(value(intake, fact)) is type(expected)


@pytest.mark.parametrize("unanswered", [item("headache"), item("headache", answer=[])])
def test_an_item_with_no_answer_leaves_the_fact_missing(unanswered: dict[str, Any]) -> None:
    intake = read(response(unanswered, item("dizziness", {"valueBoolean": False})))
    assert value(intake, "headache") == "missing"
    assert value(intake, "dizziness") is False


@pytest.mark.parametrize(
    ("onset", "timestamp", "days"),
    [
        ("2026-02-22", TS, 16),
        ("2026-03-10", TS, 0),
        ("2026-02-22", "2026-03-31T00:00:00Z", 37),
        ("2026-02-22", "2026-02-22T23:59:59Z", 0),
    ],
)
def test_onset_date_gives_days_against_the_bundle_timestamp(onset: str, timestamp: str, days: int) -> None:
    qr = response(
        item("facial-numbness", {"valueBoolean": True}),
        item("facial-numbness-onset", {"valueDate": onset}),
        authored=timestamp,  # answered then: current (rules.md §1, recency)
    )
    intake = read(qr, timestamp=timestamp)
    assert value(intake, "facial-numbness-days") == days
    assert value(intake, "facial-numbness-onset") == dt.date.fromisoformat(onset)


def test_a_given_duration_beats_the_onset() -> None:
    qr = response(
        item("facial-numbness-days", {"valueInteger": 3}),
        item("facial-numbness-onset", {"valueDate": "2026-01-01"}),
    )
    assert value(read(qr), "facial-numbness-days") == 3


def test_an_onset_after_the_bundle_timestamp_is_unprocessable() -> None:
    qr = response(item("facial-numbness-onset", {"valueDate": "2026-04-01"}))
    with pytest.raises(Unprocessable, match="after the evaluation time"):
        read(qr)


@pytest.mark.parametrize(
    ("shape", "items"),
    [
        ("in a group", [item("symptoms", item=[item("headache", {"valueBoolean": True})])]),
        (
            "in a group in a group",
            [item("screen", item=[item("symptoms", item=[item("headache", {"valueBoolean": True})])])],
        ),
        (
            "under an answer",
            [
                item(
                    "facial-numbness",
                    {"valueBoolean": True, "item": [item("headache", {"valueBoolean": True})]},
                )
            ],
        ),
    ],
)
def test_nested_items_are_read(shape: str, items: list[dict[str, Any]]) -> None:
    assert value(read(response(*items)), "headache") is True


def test_link_ids_that_are_not_facts_are_ignored() -> None:
    qr = response(
        item("favourite-colour", {"valueString": "blue"}),
        item("headache-x", {"valueInteger": 3}),
        item("headache", {"valueBoolean": True}),
    )
    intake = read(qr)
    assert set(intake.facts) == {"headache"}


@pytest.mark.parametrize(
    ("canonical", "ours"),
    [
        (QUESTIONNAIRE, True),
        (f"{QUESTIONNAIRE}|1.0.0", True),
        ("http://example.org/fhir/Questionnaire/phq-9", False),
        (f"{QUESTIONNAIRE}-v2", False),
        (None, False),
    ],
)
def test_only_our_questionnaire_is_read(canonical: str | None, ours: bool) -> None:
    qr = response(item("headache", {"valueBoolean": True}), questionnaire=canonical)
    intake = read(qr, observation("dizziness", False))
    assert value(intake, "headache") == (True if ours else "missing")
    if not ours:
        assert "Bundle.entry[0].resource" in [s.location for s in intake.skipped]


def test_a_response_to_another_questionnaire_alone_gives_no_fact() -> None:
    qr = response(
        item("headache", {"valueBoolean": True}), questionnaire="http://example.org/Questionnaire/x"
    )
    with pytest.raises(Unprocessable, match="no entry gives any neckcheck fact"):
        read(qr)


@pytest.mark.parametrize(
    ("status", "used", "in_progress"),
    [
        ("completed", True, False),
        ("amended", True, False),
        ("in-progress", True, True),
        ("entered-in-error", False, False),
        ("stopped", False, False),
    ],
)
def test_status(status: str, used: bool, in_progress: bool) -> None:
    intake = read(
        response(item("headache", {"valueBoolean": True}), status=status), observation("dizziness", False)
    )
    assert value(intake, "headache") == (True if used else "missing")
    assert intake.in_progress is in_progress


def test_a_missing_status_is_a_400() -> None:
    with pytest.raises(InvalidInput, match="status is required"):
        read(response(item("headache", {"valueBoolean": True}), status=None))


@pytest.mark.parametrize(
    ("fact", "answer", "where"),
    [
        ("headache", {"valueString": "yes"}, FIRST_ANSWER),
        ("headache", {"valueInteger": 1}, FIRST_ANSWER),
        ("headache", {"valueBoolean": "true"}, f"{FIRST_ANSWER}.valueBoolean"),
        ("headache", {"valueCoding": SIDES["left"]}, FIRST_ANSWER),
        ("facial-numbness-days", {"valueBoolean": True}, FIRST_ANSWER),
        ("facial-numbness-days", {"valueDecimal": 3.5}, FIRST_ANSWER),
        ("facial-numbness-days", {"valueInteger": "3"}, f"{FIRST_ANSWER}.valueInteger"),
        ("facial-numbness-side", YES, FIRST_ANSWER),
        ("facial-numbness-side", {"valueString": "left"}, FIRST_ANSWER),
        ("facial-numbness-onset", {"valueString": "2026-02-01"}, FIRST_ANSWER),
        ("facial-numbness-onset", {"valueDate": "yesterday"}, f"{FIRST_ANSWER}.valueDate"),
        ("neck-pain-severity", {"valueString": "7"}, FIRST_ANSWER),
        ("neck-pain-severity", {"valueBoolean": True}, FIRST_ANSWER),
    ],
)
def test_an_answer_of_the_wrong_type_is_a_400_naming_its_location(
    fact: str, answer: dict[str, Any], where: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        read(response(item(fact, answer)))
    assert where in str(caught.value)
    assert any(p.location is not None and p.location.startswith(where) for p in caught.value.problems)


def test_the_location_of_a_wrong_answer_in_a_group_is_exact() -> None:
    group = item(
        "symptoms", item=[item("dizziness", {"valueBoolean": False}), item("headache", {"valueString": "x"})]
    )
    with pytest.raises(
        InvalidInput, match=r"Bundle\.entry\[0\]\.resource\.item\[0\]\.item\[1\]\.answer\[0\]"
    ):
        read(response(group))


@pytest.mark.parametrize(
    ("fact", "answer", "why"),
    [
        ("facial-numbness-days", {"valueInteger": -1}, "negative"),
        ("neck-pain-severity", {"valueInteger": 11}, "0-10"),
        ("neck-pain-severity", {"valueInteger": -1}, "0-10"),
        ("neck-pain-severity", {"valueDecimal": 10.5}, "0-10"),
    ],
)
def test_an_impossible_value_is_unprocessable(fact: str, answer: dict[str, Any], why: str) -> None:
    with pytest.raises(Unprocessable, match=why):
        read(response(item("headache", {"valueBoolean": True}), item(fact, answer)))


def test_evidence_names_the_response_and_the_item() -> None:
    qr = response(
        item("symptoms", item=[item("headache", {"valueBoolean": True})]),
        item("facial-numbness-onset", {"valueDate": "2026-02-22"}),
        rid="screen-7",
    )
    intake = read(qr)
    assert intake.facts["headache"].evidence == (
        Evidence("QuestionnaireResponse", "QuestionnaireResponse/screen-7", "headache"),
    )
    (days_evidence,) = intake.facts["facial-numbness-days"].evidence
    assert (days_evidence.reference, days_evidence.item) == (
        "QuestionnaireResponse/screen-7",
        "facial-numbness-onset",
    )
    assert [e.reference for e in intake.responses] == ["QuestionnaireResponse/screen-7"]


def test_a_response_that_gave_no_fact_is_not_listed_as_a_response() -> None:
    intake = read(response(item("headache"), rid="empty"), observation("dizziness", False))
    assert intake.responses == ()
