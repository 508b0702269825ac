"""Feedback (CDS Hooks 2.0.1 §Feedback): the spec's example payloads are accepted, stored, and reported."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.storage.feedback_report import feedback_report
from tests.cds.support import CDS_FIXTURES, hook_request
from tests.scenarios import AS_OF

FEEDBACK = "/cds-services/neckcheck-patient-view/feedback"
NECKCHECK = Path(sys.executable).with_name("neckcheck")


@pytest.fixture()
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(insecure_dev=True)


def spec_example(name: str, card: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((CDS_FIXTURES / name).read_text())
    if card:
        payload["feedback"][0]["card"] = card
    return payload


def card_uuid(client: FlaskClient, scenario: str) -> str:
    response = client.post(
        "/cds-services/neckcheck-patient-view",
        data=json.dumps(hook_request(scenario)),
        content_type="application/json",
    )
    return str(response.get_json()["cards"][0]["uuid"])


def counts(report: dict[str, Any], per: str) -> dict[str, tuple[int, int, int]]:
    """(shown, accepted, overridden) per rule or per card of a feedback report."""
    key = per[:-1]
    return {r[key]: (r["shown"], r["accepted"], r["overridden"]) for r in report[per]}


def neckcheck_report(database: str) -> list[str]:
    """The lines of `neckcheck feedback-report` on ``database``."""
    done = subprocess.run(
        [str(NECKCHECK), "feedback-report"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"NECKCHECK_DATABASE_URL": database, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    "name", ["feedback-accepted.json", "feedback-overridden.json", "feedback-overridden-with-reason.json"]
)
def test_spec_feedback_examples_are_accepted(client: FlaskClient, name: str) -> None:
    response = client.post(FEEDBACK, data=json.dumps(spec_example(name)), content_type="application/json")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": [{"card": "x", "outcome": "ignored", "outcomeTimestamp": "2026-01-01"}]}, "outcome"),
        (
            {"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-01-01"}]},
            "acceptedSuggestions",
        ),
        ({"feedback": [{"outcome": "overridden", "outcomeTimestamp": "2026-01-01"}]}, "card"),
    ],
)
def test_malformed_feedback_is_a_400(client: FlaskClient, payload: Any, where: str) -> None:
    response = client.post(FEEDBACK, data=json.dumps(payload), content_type="application/json")
    assert response.status_code == 400
    assert where in response.get_data(as_text=True)


def test_feedback_is_stored_and_reported_per_rule_and_indicator(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    imaging = card_uuid(client, "S1-observations.json")  # warning: imaging-referral
    urgent = card_uuid(client, "S7-observations.json")  # critical: three rules
    card_uuid(client, "S5-questionnaire.json")  # warning, preliminary: no rule fired, no feedback
    for payload in (
        spec_example("feedback-accepted.json", imaging),
        spec_example("feedback-overridden-with-reason.json", urgent),
        spec_example("feedback-overridden.json", "a-card-we-never-issued"),
    ):
        assert (
            client.post(FEEDBACK, data=json.dumps(payload), content_type="application/json").status_code
            == 200
        )
    assert app.extensions["neckcheck.writer"].flush()  # cards and feedback are stored in the background
    report = feedback_report(app.extensions["neckcheck.feedback"].engine)
    rules = counts(report, "rules")
    assert rules["imaging-referral"] == (2, 1, 1)
    assert rules["urgent-signs"] == (1, 0, 1)
    assert rules["(no rule fired: data missing)"] == (1, 0, 0)
    assert rules["unknown"] == (0, 0, 1)
    cards = counts(report, "cards")
    assert cards["neckcheck-patient-view warning"] == (2, 1, 0)
    assert cards["neckcheck-patient-view critical"] == (1, 0, 1)

    report = neckcheck_report(app.config["NECKCHECK_SETTINGS"].database_url)
    line = next(ln for ln in report if ln.startswith("imaging-referral"))
    assert line.split() == ["imaging-referral", "2", "1", "1", "50%", "50%"]


def test_no_free_text_is_stored(app: Flask, client: FlaskClient) -> None:
    payload = spec_example("feedback-overridden-with-reason.json")
    payload["feedback"][0]["overrideReason"]["userComment"] = "Mrs Example declined"
    client.post(FEEDBACK, data=json.dumps(payload), content_type="application/json")
    assert app.extensions["neckcheck.writer"].flush()
    engine = app.extensions["neckcheck.feedback"].engine
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM cds_feedback")]
    assert rows and "Mrs Example" not in repr(rows)
    assert rows[0][6] in (1, True)  # has_comment


def test_feedback_stored_before_its_card_joins_it_once_both_are_stored(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    """Feedback and cards reach the database from a background writer, in no set order (a card can still
    be queued, or spooled by another worker, when its feedback is stored): the report joins them anyway."""
    at = AS_OF + dt.timedelta(hours=1)  # the card's uuid depends on the time; S1's readings are 1 h old
    ehr_copy = make_app(database_url=f"sqlite:///{tmp_path / 'elsewhere.db'}")
    ehr_copy.extensions["neckcheck.clock"] = lambda: at
    uuid = card_uuid(ehr_copy.test_client(), "S1-observations.json")  # the card, issued before

    app = make_app()
    app.extensions["neckcheck.clock"] = lambda: at
    client = app.test_client()
    accepted = json.dumps(spec_example("feedback-accepted.json", uuid))
    assert client.post(FEEDBACK, data=accepted, content_type="application/json").status_code == 200
    assert app.extensions["neckcheck.writer"].flush()
    engine = app.extensions["neckcheck.feedback"].engine
    assert counts(feedback_report(engine), "rules") == {"unknown": (0, 1, 0)}  # no card row yet

    assert card_uuid(client, "S1-observations.json") == uuid  # now its card row is written
    assert app.extensions["neckcheck.writer"].flush()
    report = feedback_report(engine)
    assert counts(report, "rules") == {"imaging-referral": (1, 1, 0)}
    assert counts(report, "cards") == {"neckcheck-patient-view warning": (1, 1, 0)}
    report = neckcheck_report(app.config["NECKCHECK_SETTINGS"].database_url)
    assert ["imaging-referral", "1", "1", "0", "100%", "0%"] in [line.split() for line in report]
