"""A hook call is assessed at the clock (rules.md §1): the same chart gives another card as it ages."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from flask import Flask

from tests.cds.support import hook_request
from tests.scenarios import AS_OF

PATIENT_VIEW = "/cds-services/neckcheck-patient-view"


def card_at(make_app: Callable[..., Flask], clock: dt.datetime, name: str = "S7-observations.json") -> Any:
    """The card of a patient-view call on the scenario's chart (recorded at AS_OF) made at ``clock``."""
    app = make_app()
    app.extensions["neckcheck.clock"] = lambda: clock
    answer = app.test_client().post(
        PATIENT_VIEW, data=json.dumps(hook_request(name)), content_type="application/json"
    )
    assert answer.status_code == 200
    (card,) = answer.get_json()["cards"]
    return card


def test_a_chart_recorded_this_morning_gives_the_critical_card(make_app: Callable[..., Flask]) -> None:
    card = card_at(make_app, AS_OF + dt.timedelta(hours=3))
    assert card["indicator"] == "critical"


def test_the_same_chart_a_day_later_asks_again_about_the_urgent_signs(make_app: Callable[..., Flask]) -> None:
    """Weakness present, 24 h + 1 s old: no stat alarm, and no reassurance: a warning that asks again."""
    card = card_at(make_app, AS_OF + dt.timedelta(hours=24, seconds=1))
    assert card["indicator"] == "warning" and card["summary"].startswith("Preliminary (moderate risk")
    assert "Weakness was recorded present on 2026-03-10: ask again." in card["detail"]
    # the numbness (14 d window) still counts: left-sided numbness with dizziness still refers for imaging
    assert [s["label"] for s in card.get("suggestions", [])] == [
        "Propose: Neurology referral for further evaluation (urgent)",
        "Propose: MRI of the brain (urgent)",
    ]


def test_weeks_later_every_reading_is_stale_and_nothing_is_proposed(make_app: Callable[..., Flask]) -> None:
    card = card_at(make_app, AS_OF + dt.timedelta(days=15))
    assert card["indicator"] == "warning" and "suggestions" not in card
    for line in ("Weakness", "Dizziness", "Facial numbness"):
        assert f"{line} was recorded present on 2026-03-10: ask again." in card["detail"]
