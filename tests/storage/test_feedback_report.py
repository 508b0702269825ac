"""`neckcheck feedback-report`: per card and per rule, week by week, shown / accepted / overridden, the
override reasons counted and comments counted (never shown), as text, JSON, markdown and a picture.

The records are stored the way the service stores them (CardRecord and FeedbackRecord through the record
writer) with times of the test's choosing, so the weeks are known; the command is run as a user runs it.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service.storage.database import make_engine, upgrade
from service.storage.feedback import CardRecord, FeedbackRecord
from service.storage.feedback_report import feedback_report, markdown, week_of
from service.storage.records import KINDS
from service.storage.spool import Spool
from service.storage.writer import RecordWriter

NECKCHECK = Path(sys.executable).with_name("neckcheck")
PV = "neckcheck-patient-view"
MON = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)  # a Monday: ISO week 2026-W45
REASON = "http://example.org/override-reasons"


def at(days: int) -> str:
    return (MON + dt.timedelta(days=days)).isoformat()


def card(uuid: str, indicator: str, rules: str, days: int) -> CardRecord:
    return CardRecord(uuid, PV, indicator, rules, at(days))


def answer(
    n: int, card_uuid: str, days: int, code: str | None = None, comment: bool = False
) -> FeedbackRecord:
    return FeedbackRecord(
        uuid=f"00000000-0000-4000-8000-{n:012d}",
        service_id=PV,
        card_uuid=card_uuid,
        outcome="overridden" if code is not None or comment else "accepted",
        override_system=REASON if code else None,
        override_code=code or None,
        has_comment=comment,
        accepted_suggestions=0 if code is not None or comment else 1,
        outcome_at=at(days),
        received_at=at(days),
    )


@pytest.fixture()
def database(tmp_path: Path) -> tuple[str, Engine]:
    """Two weeks of cards and feedback: week 45 (days 0-6) and week 46 (days 7-13)."""
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    engine = make_engine(url)
    upgrade(engine)
    writer = RecordWriter(engine, Spool(tmp_path / "spool", 10**6), KINDS, background=False)
    records = [
        card("c1", "warning", "imaging-referral", 0),
        card("c2", "warning", "imaging-referral", 1),
        card("c3", "critical", "urgent-signs,imaging-referral", 2),
        card("c4", "warning", "imaging-referral", 8),
        card("c5", "info", "", 9),
        answer(1, "c1", 0),  # accepted, week 45
        answer(2, "c2", 1, code="patient-declined"),  # overridden with a reason, week 45
        answer(3, "c3", 7, code="already-imaged", comment=True),  # card of week 45, answered in week 46
        answer(4, "c4", 8, comment=True),  # overridden with a comment only, week 46
        answer(5, "never-issued", 9),
    ]
    assert writer.store(records)
    return url, engine


def test_each_rule_and_card_counted_per_week_with_reasons(database: tuple[str, Engine]) -> None:
    _, engine = database
    report = feedback_report(engine)
    rules = {r["rule"]: r for r in report["rules"]}
    imaging = rules["imaging-referral"]
    assert (imaging["shown"], imaging["accepted"], imaging["overridden"]) == (4, 1, 3)
    assert imaging["override"] == 0.75
    assert {x["reason"]: x["count"] for x in imaging["overrideReasons"]} == {
        f"{REASON}|patient-declined": 1,
        f"{REASON}|already-imaged": 1,
        "(no reason given)": 1,
    }
    assert imaging["overrideComments"] == 2
    assert imaging["weeks"] == [
        {"week": "2026-W45", "shown": 3, "accepted": 1, "overridden": 1},
        {"week": "2026-W46", "shown": 1, "accepted": 0, "overridden": 2},
    ]
    urgent = rules["urgent-signs"]
    assert (urgent["shown"], urgent["overridden"], urgent["overrideComments"]) == (1, 1, 1)
    assert rules["(no rule fired: data missing)"]["shown"] == 1
    assert (rules["unknown"]["shown"], rules["unknown"]["accepted"]) == (0, 1)
    cards = {c["card"]: (c["shown"], c["accepted"], c["overridden"]) for c in report["cards"]}
    assert cards == {
        f"{PV} warning": (3, 1, 2),
        f"{PV} critical": (1, 0, 1),
        f"{PV} info": (1, 0, 0),
        "unknown": (0, 1, 0),
    }


def test_since_counts_feedback_received_since_on_cards_issued_before(database: tuple[str, Engine]) -> None:
    """From week 46 on: c3 was issued in week 45 but overridden in week 46, so its override counts, under
    both of the rules it carried, and it is not counted as shown again."""
    _, engine = database
    report = feedback_report(engine, since=MON + dt.timedelta(days=7), by="all")
    rules = {r["rule"]: (r["shown"], r["accepted"], r["overridden"]) for r in report["rules"]}
    assert rules == {
        "imaging-referral": (1, 0, 2),
        "urgent-signs": (0, 0, 1),
        "(no rule fired: data missing)": (1, 0, 0),
        "unknown": (0, 1, 0),
    }
    assert "weeks" not in report["rules"][0]


def test_the_command_writes_json_markdown_and_a_picture(database: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = database
    out = tmp_path / "report"
    done = subprocess.run(
        [
            str(NECKCHECK),
            "feedback-report",
            "--since",
            "2026-11-01",
            "--format",
            "markdown",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"NECKCHECK_DATABASE_URL": url, "PATH": "/usr/bin:/bin", "MPLCONFIGDIR": str(tmp_path / "mpl")},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "| imaging-referral | 4 | 1 | 3 | 25% | 75% | 2 |" in done.stdout
    assert json.loads((out / "feedback.json").read_text()) == json.loads(
        json.dumps(feedback_report(engine, since=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))
    )
    assert (out / "feedback.md").read_text() == done.stdout.removesuffix("\n")
    assert (out / "feedback.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 2026-W46 | 1 | 0 | 2 |" in done.stdout


def test_a_bad_since_is_one_line_and_exit_2(database: tuple[str, Engine]) -> None:
    url, _ = database
    done = subprocess.run(
        [str(NECKCHECK), "feedback-report", "--since", "last tuesday"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"NECKCHECK_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--since" in done.stderr


def test_an_empty_period_says_so_and_weeks_are_iso_weeks() -> None:
    """2026 has 53 ISO weeks: its 31 December is a Thursday."""
    report = {"since": None, "by": "all", "cards": [], "rules": []}
    assert "No card was overridden" in markdown(report)
    assert week_of(dt.datetime(2026, 12, 31, tzinfo=dt.UTC)) == "2026-W53"
