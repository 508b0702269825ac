"""The questionnaire loop in LHC-Forms (issue 11 §4): enableWhen hides and shows the right items, and a form
pre-filled with neckcheck's ``$populate`` response leaves only the unknown facts to answer."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.browser.sdc import FHIR, Form, assess
from tests.live import Server
from tests.support import facts_bundle, summary

FOLLOW_UPS = {
    "facial-numbness": ("facial-numbness-side", "facial-numbness-days", "headache", "dizziness"),
    "neck-pain": ("arm-pain-radiating", "arm-hand-numbness"),
}


def answered(response: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if item.get("answer"):
                found.add(item["linkId"])
            walk(item.get("item", []))
            for answer in item.get("answer", []):
                walk(answer.get("item", []))

    walk(response.get("item", []))
    return found


def test_urgent_signs_come_first(form: Form) -> None:
    first = form.page.locator("lhc-item.lhc-item-question").first.get_attribute("id") or ""
    assert first.split("/")[0].removeprefix("item-") in (
        "vision-change",
        "slurred-speech",
        "weakness",
        "symptoms-worsening",
    )


def test_enable_when_shows_follow_up_questions_only_after_a_yes(form: Form) -> None:
    for gate, follow_ups in FOLLOW_UPS.items():
        assert not any(form.shown(f) for f in follow_ups), gate
        form.answer_yes_no(gate, True)
        assert all(form.shown(f) for f in follow_ups), gate
        form.answer_yes_no(gate, False)
        assert not any(form.shown(f) for f in follow_ups), gate


def test_a_form_prefilled_by_populate_asks_only_what_is_unknown(form: Form, service: Server) -> None:
    data = facts_bundle(**{"facial-numbness": True, "facial-numbness-side": "left", "weakness": False})
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subject", "valueReference": {"reference": "Patient/p1"}},
            {"name": "bundle", "resource": data},
        ],
    }
    answer = requests.post(
        f"{service.url}/fhir/Questionnaire/neckcheck-screen/$populate",
        data=json.dumps(parameters),
        headers=FHIR,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    (populated,) = [p["resource"] for p in answer.json()["parameter"] if p["name"] == "response"]
    questionnaire = requests.get(f"{service.url}/fhir/Questionnaire/neckcheck-screen", timeout=10).json()
    form.render(questionnaire, populated)
    assert answered(form.response()) == {"facial-numbness", "facial-numbness-side", "weakness"}
    # the nurse answers the rest and the result is final
    for sign in ("vision-change", "slurred-speech", "symptoms-worsening"):
        form.answer_yes_no(sign, False)
    form.type_number("facial-numbness-days", 3)
    form.answer_yes_no("headache", False)
    form.answer_yes_no("dizziness", False)
    form.answer_yes_no("neck-pain", False)
    got = summary(assess(service, form.response()))
    assert got["status"] == "final" and got["risk"] == "moderate"
