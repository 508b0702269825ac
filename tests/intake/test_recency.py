"""Evidence recency, rules.md §1 "old is not now" (clinical contract 1.1.0), point by point.

Every case runs the whole engine (intake, rules, output) at the contract's evaluation time, 2026-03-10T09:00Z
(the Bundle's timestamp unless a case says otherwise), and checks what a clinician would see: the fact's
value, the status, the orders, and what is listed as not used.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.assess import Assessment, Assessor
from service.errors import ConfigError
from service.intake.bundle import age_text
from service.rules.table import DEFAULT_TABLE, load_table
from tests.support import CODES, TS, bundle_of, observation

URGENT = ("vision-change", "slurred-speech", "weakness", "symptoms-worsening")
QUESTIONNAIRE = f"{CODES['canonicalBase']}/Questionnaire/{CODES['questionnaire']['id']}"
AS_OF = dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)
ASSESSOR = Assessor.load()


def ago(**delta: float) -> str:
    """A FHIR instant that long before the evaluation time."""
    return (AS_OF - dt.timedelta(**delta)).isoformat().replace("+00:00", "Z")


def urgent_absent(when: str = TS) -> list[dict[str, Any]]:
    return [observation(f, False, rid=f"{f}-absent", when=when) for f in URGENT]


def assess(*resources: dict[str, Any], timestamp: str = TS, **run: Any) -> Assessment:
    return ASSESSOR.run(bundle_of(*resources, timestamp=timestamp), **run)


def fact(result: Assessment, name: str) -> Any:
    found = result.intake.facts.get(name)
    return "unknown" if found is None else found.value


def not_used(result: Assessment) -> list[str]:
    return [s.reason for s in result.intake.skipped if "stale" in s.reason]


def orders(result: Assessment) -> list[tuple[str, str]]:
    return sorted((o.key, o.priority) for o in result.decision.orders)


def period(start: str | None = None, end: str | None = None) -> dict[str, Any]:
    return {k: v for k, v in (("start", start), ("end", end)) if v is not None}


def timed_by(resource: dict[str, Any], **times: Any) -> dict[str, Any]:
    """The Observation with its effectiveDateTime replaced by the given time fields."""
    out = {k: v for k, v in resource.items() if k != "effectiveDateTime"}
    return {**out, **times}


def response(
    *answers: tuple[str, Any], authored: str | None = TS, status: str = "completed"
) -> dict[str, Any]:
    qr: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": "qr1",
        "questionnaire": QUESTIONNAIRE,
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "item": [{"linkId": name, "answer": [{"valueBoolean": v}]} for name, v in answers],
    }
    if authored is not None:
        qr["authored"] = authored
    return qr


# --- the lookbacks are data: 24 h for the urgent signs, 14 d for every other fact -------------------------


def test_each_fact_has_the_lookback_of_the_contract() -> None:
    windows = {name: str(f.lookback) for name, f in load_table().facts.items()}
    assert windows == {name: ("24 h" if name in URGENT else "14 d") for name in windows}
    assert {f.lookback.span for f in load_table().facts.values()} == {
        dt.timedelta(hours=24),
        dt.timedelta(14),
    }


@pytest.mark.parametrize(
    ("lookback", "message"),
    [
        (None, "lookback is required"),
        (
            {"value": 1, "code": "mo"},
            "lookback must be a positive whole number",
        ),  # a month has no fixed length
        ({"value": 0, "code": "d"}, "lookback must be a positive whole number"),
        ({"value": 1.5, "code": "d"}, "lookback must be a positive whole number"),
        ({"value": "14", "code": "d"}, "lookback must be a positive whole number"),
    ],
)
def test_a_table_with_a_missing_or_bad_lookback_refuses_to_load(
    tmp_path: Path, lookback: Any, message: str
) -> None:
    raw = json.loads(DEFAULT_TABLE.read_text())
    for f in raw["facts"]:
        if f["name"] == "weakness":
            f.pop("lookback")
            if lookback is not None:
                f["lookback"] = lookback
    path = tmp_path / "table.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=f"fact weakness: {message}"):
        load_table(path)


def test_a_version_without_its_change_log_entry_refuses_to_load(tmp_path: Path) -> None:
    raw = json.loads(DEFAULT_TABLE.read_text())
    raw["version"] = "1.2.0"
    path = tmp_path / "table.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"changeLog must end with an entry for version 1\.2\.0"):
        load_table(path)


# --- boundaries: a reading older than its lookback is stale; exactly the window is still current ----------

BOUNDARIES = [
    # (case, fact, value, effectiveDateTime, current?)
    ("urgent sign 1 h old", "weakness", True, ago(hours=1), True),
    ("urgent sign exactly 24 h old", "weakness", True, ago(hours=24), True),
    ("urgent sign 24 h + 1 s old", "weakness", True, ago(hours=24, seconds=1), False),
    ("urgent sign 9 days old", "weakness", True, ago(days=9), False),
    ("urgent sign absent 24 h + 1 s old", "vision-change", False, ago(hours=24, seconds=1), False),
    ("other fact exactly 14 d old", "headache", True, ago(days=14), True),
    ("other fact 14 d + 1 s old", "headache", True, ago(days=14, seconds=1), False),
    ("other fact 13 d old", "neck-pain", True, ago(days=13), True),
    ("other fact 2 years old", "neck-pain", False, ago(days=730), False),
    ("date only, yesterday: aged from the end of that day (9 h)", "weakness", False, "2026-03-09", True),
    ("date only, two days ago: 33 h", "weakness", True, "2026-03-08", False),
    ("date only, 14 days before: the end of that day is 13 d 9 h ago", "headache", True, "2026-02-24", True),
    ("date only, 15 days before", "headache", True, "2026-02-23", False),
    ("month only: aged from the end of that month", "neck-pain", True, "2026-03", True),
    ("month only, two months before", "neck-pain", True, "2026-01", False),
    ("dated after the evaluation time (clock skew, used): age zero", "weakness", True, ago(hours=-2), True),
]


@pytest.mark.parametrize(
    ("case", "name", "given", "when", "current"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES]
)
def test_the_boundaries_of_the_window(case: str, name: str, given: bool, when: str, current: bool) -> None:
    result = assess(observation(name, given, when=when))
    assert fact(result, name) == (given if current else "unknown")
    assert bool(not_used(result)) is not current
    assert (result.intake.stale != ()) is not current


@pytest.mark.parametrize(
    ("case", "times", "current"),
    [
        ("no time at all: current, as before", {}, True),
        (
            "an open period that began a month ago: still going on, age zero",
            {"effectivePeriod": period(ago(days=30))},
            True,
        ),
        (
            "a period that ended 23 h ago: aged from its end",
            {"effectivePeriod": period(ago(days=30), ago(hours=23))},
            True,
        ),
        (
            "a period that ended 25 h ago",
            {"effectivePeriod": period(ago(hours=30), ago(hours=25))},
            False,
        ),
        ("a period with only an end, 25 h ago", {"effectivePeriod": period(end=ago(hours=25))}, False),
        ("issued 2 h ago, no effective time", {"issued": ago(hours=2)}, True),
        ("issued 2 days ago, no effective time", {"issued": ago(days=2)}, False),
        ("effectiveInstant 25 h ago", {"effectiveInstant": ago(hours=25)}, False),
        (
            "effective time wins over issued",
            {"effectiveDateTime": ago(days=2), "issued": ago(hours=1)},
            False,
        ),
    ],
)
def test_age_runs_from_the_last_instant_the_reading_held(
    case: str, times: dict[str, Any], current: bool
) -> None:
    weakness = timed_by(observation("weakness", True), **times)
    result = assess(weakness)
    assert fact(result, "weakness") == (True if current else "unknown")
    assert result.decision.risk == ("high" if current else "negligible")


# --- what a stale reading does: unknown, asked again, listed, never silently dropped ------------------------


def test_a_stale_present_urgent_sign_raises_no_alarm_and_is_asked_again() -> None:
    """Two years old "weakness present": not a stat order today; the question says what was recorded."""
    old = observation("weakness", True, rid="old-weakness", when="2024-03-10T09:00:00Z")
    result = assess(
        old,
        observation("facial-numbness", False),
        *[o for o in urgent_absent() if o["id"] != "weakness-absent"],
    )
    assert result.decision.risk != "high" and orders(result) == []
    assert not result.decision.final and result.decision.ask_about == ("weakness",)
    ra = result.bundle["entry"][0]["resource"]
    note = " ".join(n["text"] for n in ra["note"])
    assert "Weakness was recorded present on 2024-03-10: ask again." in note
    assert {"reference": "Observation/old-weakness"} not in ra.get("basis", [])
    (reason,) = not_used(result)
    assert reason.startswith(
        "weakness: recorded 2024-03-10, 730 days before the evaluation time, older than the 24 h"
    )


def test_a_stale_absent_urgent_sign_reassures_no_one() -> None:
    """Last month's "no weakness" does not make today's result final."""
    result = assess(
        observation("facial-numbness", False),
        *[o for o in urgent_absent() if o["id"] != "weakness-absent"],
        observation("weakness", False, rid="old", when=ago(days=30)),
    )
    assert not result.decision.final and result.decision.ask_about == ("weakness",)
    # an absent stale reading is listed as not used but is no reason to say "recorded present"
    note = " ".join(n["text"] for n in result.bundle["entry"][0]["resource"]["note"])
    assert "ask again" not in note and "weakness" in not_used(result)[0]


@pytest.mark.parametrize(
    ("case", "readings", "expected", "conflict"),
    [
        (
            "stale present, current absent: absent, no conflict",
            [(True, ago(days=9)), (False, ago(hours=24))],
            False,
            False,
        ),
        ("stale absent, current present: present", [(False, ago(days=9)), (True, ago(hours=2))], True, False),
        ("both stale: unknown", [(True, ago(days=9)), (False, ago(days=2))], "unknown", False),
        (
            "both current: the latest wins, a conflict noted",
            [(True, ago(hours=20)), (False, ago(hours=2))],
            False,
            True,
        ),
        (
            "an older present reading, stale, beside a newer absent",
            [(False, ago(hours=3)), (True, ago(hours=30))],
            False,
            False,
        ),
    ],
)
def test_conflicts_are_resolved_among_current_readings_only(
    case: str, readings: list[tuple[bool, str]], expected: Any, conflict: bool
) -> None:
    resources = [observation("weakness", v, rid=f"w{i}", when=when) for i, (v, when) in enumerate(readings)]
    result = assess(*resources)
    assert fact(result, "weakness") == expected
    assert bool(result.intake.conflicts) is conflict


def test_a_stale_symptom_turns_low_into_negligible_and_changes_nothing_else() -> None:
    """§3 treats low and negligible as one level: same orders, card and status; the rationale says why."""
    current = [*urgent_absent(), observation("facial-numbness", False)]
    low = assess(*current, observation("dizziness", True, when=ago(days=1)))
    negligible = assess(*current, observation("dizziness", True, when=ago(days=20)))
    assert (low.decision.risk, negligible.decision.risk) == ("low", "negligible")
    assert low.decision.final and negligible.decision.final
    assert orders(low) == orders(negligible) == []
    rationale = negligible.bundle["entry"][0]["resource"]["prediction"][0]["rationale"]
    assert (
        "Not used, too old to speak for now: dizziness present (recorded 2026-02-18, older than 14 d)."
        in rationale
    )


def test_nothing_but_stale_readings_is_assessed_as_all_unknown_not_refused() -> None:
    """Every reading too old: the result asks about everything rather than a 422 "no facts"."""
    result = assess(*urgent_absent(when=ago(days=3)))
    assert not result.decision.final and set(URGENT) <= set(result.decision.ask_about)
    assert len(not_used(result)) == 4 and result.intake.facts == {}


# --- a QuestionnaireResponse is judged item by item ---------------------------------------------------------


def test_a_questionnaire_response_is_judged_item_by_item() -> None:
    """Authored two days ago: its urgent answers are stale, its other answers are current."""
    qr = response(("weakness", False), ("vision-change", False), ("headache", True), authored=ago(days=2))
    result = assess(qr)
    assert fact(result, "headache") is True
    assert fact(result, "weakness") == "unknown" and fact(result, "vision-change") == "unknown"
    (reason,) = not_used(result)
    assert reason.startswith("items weakness, vision-change: recorded 2026-03-08, 48 h before")
    assert "older than the 24 h window: stale, not used" in reason
    # the response still gave a fact, so it is cited as supporting information
    assert [ev.reference for ev in result.intake.responses] == ["QuestionnaireResponse/qr1"]


@pytest.mark.parametrize(
    ("case", "authored", "preliminary"),
    [
        ("an in-progress response whose items are all stale holds nothing back", ago(days=20), False),
        ("an in-progress response with a current item makes the result preliminary", ago(hours=1), True),
    ],
)
def test_an_in_progress_response_counts_only_through_an_item_it_gives(
    case: str, authored: str, preliminary: bool
) -> None:
    qr = response(("neck-pain", False), authored=authored, status="in-progress")
    result = assess(qr, *urgent_absent(), observation("facial-numbness", False))
    assert result.decision.in_progress is preliminary
    assert result.decision.final is not preliminary
    assert bool(result.intake.responses) is preliminary


def test_a_date_only_authored_is_aged_from_the_end_of_its_day() -> None:
    qr = response(("weakness", True), authored="2026-03-09")
    assert fact(assess(qr), "weakness") is True


# --- durations are measured at the evaluation time (the contract's worked examples) -------------------------


def duration(value: float, code: str, when: str) -> dict[str, Any]:
    unit = {"value": value, "system": "http://unitsofmeasure.org", "code": code, "unit": code}
    return observation("facial-numbness-days", 1, when=when, valueQuantity=unit)


def numbness(**times: Any) -> dict[str, Any]:
    return (
        timed_by(observation("facial-numbness", True, rid="numb"), **times)
        if times
        else observation("facial-numbness", True, rid="numb")
    )


WORKED = [
    # (case, readings, duration used, persistent-numbness fires, final)
    (
        "7 d recorded 10 d ago: 7 + 10 = 17 d",
        [numbness(), duration(7, "d", "2026-02-28T09:00:00Z")],
        17,
        True,
    ),
    (
        "3 d recorded 20 d ago: stale, unknown",
        [numbness(), duration(3, "d", "2026-02-18T09:00:00Z")],
        "unknown",
        False,
    ),
    (
        "36 h recorded 12 h ago: 1.5 + 0.5 = 2 d",
        [numbness(), duration(36, "h", "2026-03-09T21:00:00Z")],
        2,
        False,
    ),
    (
        "an open period from 2026-02-22: 16 d",
        [numbness(effectivePeriod=period("2026-02-22T09:00:00Z"))],
        16,
        True,
    ),
    (
        "a period 02-10 to 02-20, 18 d old: stale, numbness unknown too",
        [numbness(effectivePeriod=period("2026-02-10T09:00:00Z", "2026-02-20T09:00:00Z"))],
        "unknown",
        False,
    ),
    ("2 wk recorded 1 d ago: 14 + 1 = 15 d", [numbness(), duration(2, "wk", ago(days=1))], 15, True),
    ("0.5 mo (15 d) recorded now", [numbness(), duration(0.5, "mo", TS)], 15, True),
    (
        "13 d recorded 1 d + 1 s ago: 14 d, not beyond",
        [numbness(), duration(13, "d", ago(days=1, seconds=1))],
        14,
        False,
    ),
]


@pytest.mark.parametrize(("case", "readings", "days", "fires"), WORKED, ids=[w[0] for w in WORKED])
def test_the_worked_examples_of_durations(
    case: str, readings: list[dict[str, Any]], days: Any, fires: bool
) -> None:
    result = assess(*readings, *urgent_absent())
    assert fact(result, "facial-numbness-days") == days
    fired = {r.rule.id for r in result.decision.fired}
    assert ("persistent-numbness" in fired) is fires
    if days == "unknown" and fact(result, "facial-numbness") is True:
        # §3's worst case (over 14 days) applies: the result waits for the duration
        assert not result.decision.final and "facial-numbness-days" in result.decision.ask_about


def test_a_duration_grows_only_while_the_numbness_goes_on() -> None:
    """Numbness recorded absent now: the 10-day-old duration is what it was (7 d), not 17 d."""
    result = assess(
        observation("facial-numbness", False), duration(7, "d", "2026-02-28T09:00:00Z"), *urgent_absent()
    )
    assert fact(result, "facial-numbness-days") == 7
    unknown = assess(duration(7, "d", "2026-02-28T09:00:00Z"), *urgent_absent())
    assert fact(unknown, "facial-numbness-days") == 17  # not known to have stopped: read conservatively


def test_a_duration_in_a_questionnaire_response_grows_from_authored() -> None:
    qr = {
        **response(("facial-numbness", True), authored=ago(days=10)),
        "item": [
            {"linkId": "facial-numbness", "answer": [{"valueBoolean": True}]},
            {"linkId": "facial-numbness-days", "answer": [{"valueInteger": 7}]},
        ],
    }
    result = assess(qr, *urgent_absent())
    assert fact(result, "facial-numbness-days") == 17
    assert "persistent-numbness" in {r.rule.id for r in result.decision.fired}


# --- the evaluation time is §1's: asOf, else Bundle.timestamp, else the clock -----------------------------


def test_age_is_measured_to_the_evaluation_time_whatever_its_source() -> None:
    weakness = observation("weakness", True, when="2026-03-10T08:00:00Z")
    assert fact(assess(weakness), "weakness") is True  # Bundle.timestamp 09:00: 1 h old
    later = dt.datetime(2026, 3, 12, tzinfo=dt.UTC)
    assert fact(assess(weakness, as_of=later), "weakness") == "unknown"  # asOf two days on: stale
    untimed = {k: v for k, v in bundle_of(weakness).items() if k != "timestamp"}
    assert fact(ASSESSOR.run(untimed, now=later), "weakness") == "unknown"  # the clock
    assert fact(ASSESSOR.run(untimed, now=AS_OF), "weakness") is True


def test_an_explicit_as_of_still_excludes_later_readings_before_any_age_is_taken() -> None:
    later = observation("weakness", True, rid="later", when="2026-03-10T10:00:00Z")
    result = assess(later, observation("headache", False), as_of=AS_OF)
    assert fact(result, "weakness") == "unknown" and not_used(result) == []
    assert any("after the evaluation time" in s.reason for s in result.intake.skipped)


# --- the age a note shows, and a property of the window ---------------------------------------------------


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (dt.timedelta(hours=24, seconds=1), "24 h 1 s"),
        (dt.timedelta(hours=30, minutes=5), "30 h 5 min"),
        (dt.timedelta(days=2, hours=23), "71 h"),
        (dt.timedelta(days=9, hours=5), "9 days"),
    ],
)
def test_ages_read_as_a_clinician_reads_them(age: dt.timedelta, text: str) -> None:
    assert age_text(age) == text


@given(
    name=st.sampled_from(
        sorted(
            load_table().facts.keys()
            - {"facial-numbness-onset", "facial-numbness-side", "facial-numbness-days", "neck-pain-severity"}
        )
    ),
    seconds=st.integers(min_value=-86400, max_value=40 * 86400),
    given_value=st.booleans(),
)
def test_a_boolean_reading_is_used_exactly_while_its_age_is_within_the_window(
    name: str, seconds: int, given_value: bool
) -> None:
    result = assess(observation(name, given_value, when=ago(seconds=seconds)))
    window = load_table().facts[name].lookback.span.total_seconds()
    assert fact(result, name) == (given_value if seconds <= window else "unknown")
