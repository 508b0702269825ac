"""The Questionnaire in a real SDC form engine (issue 11 §4): NLM's LHC-Forms in headless Chromium.

A nurse's clicks give LHC-Forms' own QuestionnaireResponse; neckcheck reads it and the result is the one
the same facts give as Observations. Everything runs on 127.0.0.1: the service under gunicorn, the page
and LHC-Forms from a loopback server, Chromium with its background traffic off.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from tests.browser.sdc import FHIR, Form, assess
from tests.live import Server
from tests.support import facts_bundle, summary


def engine(service: Server, **facts: Any) -> dict[str, Any]:
    answer = requests.post(
        f"{service.url}/fhir/$assess", data=json.dumps(facts_bundle(**facts)), headers=FHIR, timeout=10
    )
    assert answer.status_code == 200, answer.text
    out: dict[str, Any] = answer.json()
    return out


def test_a_nurses_answers_in_lhc_forms_assess_like_the_same_facts(form: Form, service: Server) -> None:
    for sign in ("vision-change", "slurred-speech", "weakness", "symptoms-worsening"):
        form.answer_yes_no(sign, False)
    form.answer_yes_no("facial-numbness", True)
    form.choose("facial-numbness-side", "Left")
    form.type_number("facial-numbness-days", 20)
    form.answer_yes_no("headache", False)
    form.answer_yes_no("dizziness", False)
    form.answer_yes_no("neck-pain", False)
    response = form.response()
    assert response["resourceType"] == "QuestionnaireResponse"
    got = summary(assess(service, response))
    expected = summary(
        engine(
            service,
            **{
                "vision-change": False,
                "slurred-speech": False,
                "weakness": False,
                "symptoms-worsening": False,
                "facial-numbness": True,
                "facial-numbness-side": "left",
                "facial-numbness-days": 20,
                "headache": False,
                "dizziness": False,
                "neck-pain": False,
            },
        )
    )
    assert got == expected
    assert got["status"] == "final" and got["risk"] == "moderate"


def test_an_unanswered_urgent_sign_in_the_form_is_unknown_not_no(form: Form, service: Server) -> None:
    form.answer_yes_no("facial-numbness", True)
    form.answer_yes_no("vision-change", False)  # the other three urgent signs are left "Not Answered"
    got = summary(assess(service, form.response()))
    assert got["status"] == "preliminary"


def test_screenshot_of_the_rendered_form(form: Form, tmp_path: Path) -> None:
    form.answer_yes_no("facial-numbness", True)
    shot = tmp_path / "sdc-lforms.png"
    form.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
