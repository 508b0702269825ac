"""The clinician app in headless Chromium, as a clinician uses it: the demo, an open FHIR server, and an EHR
launch from a card's SMART link through a simulated EHR (Authlib, PKCE) in front of a real FHIR server,
with neckcheck as deployed (no insecure dev) verifying each token by the EHR's RFC 7662 introspection.

Every page runs under the app's own Content-Security-Policy (nothing bypassed), so a script or a connection
the policy refuses fails the test; axe-core checks WCAG 2.1 AA on each screen at tablet width.
Set APP_SCREENSHOTS=<folder> (``make screenshots`` sets docs/) to keep the screens as PNG files.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from service.storage.audit import since
from service.storage.database import make_engine
from tests.browser.sdc import check_accessibility
from tests.cds.support import hook_request
from tests.fhir_server import FhirServer, patient_transaction
from tests.live import Server, free_port, running
from tests.smart_ehr import CLINICIAN, SmartEhr
from tests.tokens import ISS, Ehr, make_ehr

SCENARIOS = Path(__file__).parents[1] / "fixtures" / "scenarios"
URGENT = ("vision-change", "slurred-speech", "weakness", "symptoms-worsening")
TABLET = {"width": 820, "height": 1180}


@pytest.fixture()
def problems() -> list[str]:
    """What the browser reported as going wrong on the page (a test may take out what it caused)."""
    return []


@pytest.fixture()
def browsing(chromium: Browser, problems: list[str]) -> Iterator[Callable[..., Page]]:
    """Pages in a browser set to a locale and time zone (by default a clinic in Berlin, so screenshots
    do not depend on the machine's)."""
    contexts: list[BrowserContext] = []

    def open_page(locale: str = "en-GB", zone: str = "Europe/Berlin") -> Page:
        context = chromium.new_context(viewport=TABLET, locale=locale, timezone_id=zone)
        contexts.append(context)
        shown = context.new_page()
        shown.on("pageerror", lambda error: problems.append(str(error)))
        shown.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        return shown

    yield open_page
    for context in contexts:
        context.close()
    assert problems == [], problems  # no script error, no CSP violation, no failed request


@pytest.fixture()
def page(browsing: Callable[..., Page]) -> Page:
    return browsing()


def keep(page: Page, name: str) -> None:
    folder = os.environ.get("APP_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"app-{name}.png"), full_page=True)


def sample_patient(scenario: str, patient: str) -> dict[str, Any]:
    """A scenario's Observations as a patient of the test's own, recorded an hour ago (the app assesses
    with today's clock), as a transaction that PUTs each resource at its own id."""
    bundle = json.loads((SCENARIOS / f"{scenario}-observations.json").read_text(encoding="utf-8"))
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0).isoformat()
    entries = []
    for i, entry in enumerate(bundle["entry"]):
        resource = copy.deepcopy(entry["resource"])
        resource["id"] = f"{patient}-{i}"
        resource["subject"] = {"reference": f"Patient/{patient}"}
        resource["effectiveDateTime"] = when
        entries.append({"resource": resource})
    return patient_transaction(patient, {"resourceType": "Bundle", "type": "collection", "entry": entries})


def accessible(page: Page) -> None:
    violations = check_accessibility(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]


def shows(page: Page, risk: str, status: str) -> None:
    page.wait_for_selector(f"[data-testid=status]:text-is('{status}')")
    assert page.inner_text("[data-testid=risk]") == risk


def asked(page: Page) -> list[str]:
    facts: list[str] = page.eval_on_selector_all(
        "[data-testid=ask] > [data-fact]", "nodes => nodes.map(n => n.dataset.fact)"
    )
    return facts


def answer(page: Page, answers: dict[str, bool]) -> None:
    for fact, value in answers.items():
        page.check(f"[data-testid=ask] [data-fact={fact}] input[value={str(value).lower()}]")
    page.click("[data-testid=submit-answers]")


def save(page: Page) -> str:
    page.click("[data-testid=save-to-chart]")
    page.click("[data-testid=confirm-save]")
    page.wait_for_selector("[data-testid=save-result]")
    return page.inner_text("[data-testid=save-result]")


def statuses(page: Page) -> list[str]:
    """The HTTP status of each entry of the server's transaction-response, as the page lists them."""
    found: list[str] = page.eval_on_selector_all(
        "[data-testid=save-entries] li", "items => items.map(i => i.textContent.split(' ')[0])"
    )
    return found


def counts(server: FhirServer, patient: str) -> dict[str, int]:
    kinds = ("QuestionnaireResponse", "RiskAssessment", "ServiceRequest")
    return {kind: server.count(kind, patient) for kind in kinds}


def headline(page: Page) -> str:
    """The result's first line: what a clinician reads first."""
    return page.inner_text(".result [data-testid=headline]")


def test_demo_asks_the_missing_urgent_signs_and_gives_the_final_answer(page: Page, service: Server) -> None:
    page.goto(f"{service.url}/app/demo")
    accessible(page)
    page.click("text=S5")
    shows(page, "low", "preliminary")
    assert asked(page) == list(URGENT)  # exactly the missing questions, in the form's order
    # a preliminary result leads with what is missing, and its risk so far is not a bold reassurance
    assert headline(page).startswith("Preliminary: vision change, slurred speech, weakness and worsening")
    assert page.locator(".result strong, .result b").count() == 0
    assert page.eval_on_selector("[data-testid=risk]", "n => getComputedStyle(n).fontWeight") == "400"
    assert page.inner_text("[data-testid=save-to-chart]") == "Save preliminary result to chart…"
    page.click("[data-testid=save-to-chart]")
    said = page.inner_text("#confirm-text")
    assert said.startswith("Preliminary: vision change") and "not assessed" in said
    assert "This would save 1 record: the preliminary risk assessment." in said
    assert "Not saved: the demo has no FHIR server to save to" in said
    page.click("[data-testid=cancel-save]")
    accessible(page)
    keep(page, "1-preliminary")
    page.check("[data-fact=vision-change] input[value=false]")
    keep(page, "2-questions")
    assert page.is_disabled("[data-testid=save-to-chart]")  # an answer not submitted is not saved silently
    # one left unanswered stays unknown: still preliminary, and only that one is asked again
    answer(page, {"slurred-speech": False, "weakness": False})
    page.wait_for_function("() => document.querySelectorAll('[data-testid=ask] > [data-fact]').length === 1")
    shows(page, "low", "preliminary")
    assert asked(page) == ["symptoms-worsening"]
    answer(page, {"symptoms-worsening": True})
    shows(page, "high", "final")
    assert headline(page) == "Needs urgent in-person evaluation now"  # the action first, as on the card
    assert page.locator("[data-rule=urgent-signs]").count() == 1  # the rule and its article text below
    assert "Draft proposal" in page.inner_text("ul.orders")
    assert page.locator("[data-testid=ask]").count() == 0
    accessible(page)
    keep(page, "3-final")
    assert page.inner_text("[data-testid=save-to-chart]") == "Save to chart…"
    page.click("[data-testid=save-to-chart]")
    assert page.inner_text("#confirm-text") == (
        "This would save 3 records: your answers, the final risk assessment and a draft order. "
        "Not saved: the demo has no FHIR server to save to; the transaction is shown instead."
    )
    page.click("[data-testid=cancel-save]")
    assert save(page).startswith("Not saved: the demo has no FHIR server to save to.")
    assert "(s)" not in page.inner_text("main")  # singular or plural, never both
    sent = json.loads(page.inner_text("pre.json"))
    assert [e["resource"]["resourceType"] for e in sent["entry"]] == [
        "QuestionnaireResponse",
        "RiskAssessment",
        "ServiceRequest",
    ]
    page.click("[data-testid=clear-answers]")  # a mistaken answer is taken back by starting again
    shows(page, "low", "preliminary")
    assert asked(page) == list(URGENT)
    page.click("[data-testid=demo-list]")  # and back to the samples
    page.wait_for_url(f"{service.url}/app/demo")
    page.click("a[href^='/app/?sample=S0&']")  # a patient with nothing on record
    shows(page, "unknown", "no data")
    assert headline(page).startswith("No result without data")
    assert page.inner_text("#evidence-title + p") == "Nothing on record."
    accessible(page)


def test_a_stale_reading_is_shown_as_not_used_with_its_reason(page: Page, service: Server) -> None:
    """S12: the 9-day-old "weakness present" is older than the 24 h window; the clinician sees it listed
    as not used, with why, beside the evidence that did count (rules.md §1, recency)."""
    page.goto(f"{service.url}/app/?sample=S12&patient=scn-12")
    shows(page, "negligible", "final")
    listed = page.inner_text("[aria-labelledby=not-used-title]")
    assert listed.startswith("Not used") and "weakness" not in listed  # collapsed: the count, not the list
    assert "1 record read from the chart but not used" in listed
    page.click("[data-testid=not-used] summary")
    listed = page.inner_text("[aria-labelledby=not-used-title]")
    assert "weakness: recorded 2026-03-01, 9 days before the evaluation time" in listed
    assert "older than the 24 h window: stale, not used" in listed
    assert page.inner_text("[data-fact=weakness] td") == "no"  # the current reading is the evidence
    accessible(page)


def test_the_questions_can_be_answered_with_the_keyboard_alone(page: Page, service: Server) -> None:
    page.goto(f"{service.url}/app/?sample=S5&patient=scn-5")
    shows(page, "low", "preliminary")
    page.focus("[data-fact=vision-change] input[value=true]")
    for _ in URGENT:  # in each group: arrow to "No" (selects it), then Tab to the next group
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.dataset.testid") == "submit-answers"
    page.keyboard.press("Enter")
    shows(page, "low", "final")


def test_open_server_mode_reads_the_chart_and_saves_to_it_once(
    page: Page, service: Server, fhir_server: FhirServer
) -> None:
    patient = "app-open-5"
    chart = sample_patient("S5", patient)
    fhir_server.load(chart)
    recorded = chart["entry"][1]["resource"]["effectiveDateTime"]
    page.goto(f"{service.url}/app/?iss={fhir_server.url}&patient={patient}")
    shows(page, "low", "preliminary")
    assert asked(page) == list(URGENT)
    dates = page.eval_on_selector_all(
        "table.evidence td:last-child time", "cells => cells.map(c => c.getAttribute('datetime'))"
    )
    assert dates and all(dt.datetime.fromisoformat(d) == dt.datetime.fromisoformat(recorded) for d in dates)
    # the FHIR server's Patient names the patient; what it does not give is said to be not on record
    assert page.inner_text("[data-testid=patient] dd") == f"{patient} Sample"
    assert page.inner_text("[data-testid=patient] dt:text-is('Sex') + dd") == "not on record"
    assert page.inner_text("[data-testid=patient] dt:text-is('Age') + dd") == "not on record"
    answer(
        page, {"vision-change": False, "slurred-speech": False, "weakness": True, "symptoms-worsening": False}
    )
    shows(page, "high", "final")
    assert counts(fhir_server, patient) == {
        "QuestionnaireResponse": 0,
        "RiskAssessment": 0,
        "ServiceRequest": 0,
    }
    assert "HTTP 200" in save(page)
    assert statuses(page) == ["201", "201", "201"]
    saved = counts(fhir_server, patient)
    assert saved == {"QuestionnaireResponse": 1, "RiskAssessment": 1, "ServiceRequest": 1}
    risk = fhir_server.get("RiskAssessment", patient=patient)["entry"][0]["resource"]
    answers = fhir_server.get("QuestionnaireResponse", patient=patient)["entry"][0]["resource"]
    # the RiskAssessment cites the saved answers at their new server id (urn:uuid rewritten)
    assert {"reference": f"QuestionnaireResponse/{answers['id']}", "type": "QuestionnaireResponse"} in risk[
        "basis"
    ]
    save(page)  # again: the conditional creates match, nothing new
    assert statuses(page) == ["200", "200", "200"]
    assert counts(fhir_server, patient) == saved
    page.reload()  # the chart now holds the answers: opened again, the result is final without asking
    shows(page, "high", "final")
    assert page.locator("[data-testid=ask]").count() == 0


@dataclass
class Production:
    """neckcheck as deployed (no insecure dev, no demo) trusting the simulated EHR: its hook JWTs by key,
    the app's tokens by the EHR's introspection endpoint."""

    ehr: SmartEhr
    service: Server
    signer: Ehr
    folder: Path

    def audit(self) -> list[dict[str, Any]]:
        """The audit trail the service left (read once it has stopped and flushed)."""
        engine = make_engine(f"sqlite:///{self.folder / 'neckcheck.db'}")
        try:
            return list(since(engine, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
        finally:
            engine.dispose()


@pytest.fixture()
def production(tmp_path: Path, fhir_server: FhirServer) -> Iterator[Production]:
    port = free_port()  # the service's URL is the EHR's registered redirect URI, so it is chosen first
    url = f"http://127.0.0.1:{port}"
    with SmartEhr(fhir_server.url, "neckcheck", f"{url}/app/", url) as ehr:
        signer = make_ehr(tmp_path, (ehr.iss,), ehr.introspection(tmp_path))
        settings = {
            "NECKCHECK_INSECURE_DEV": "0",
            "NECKCHECK_APP_DEMO": "0",
            "NECKCHECK_TRUSTED_ISSUERS_FILE": str(signer.issuers_file),
            "NECKCHECK_PUBLIC_URL": url,
        }
        with running(tmp_path, port=port, **settings) as service:
            yield Production(ehr, service, signer, tmp_path)


def test_a_card_link_launches_the_app_through_the_ehr(
    page: Page, production: Production, fhir_server: FhirServer, problems: list[str]
) -> None:
    patient = "app-ehr-5"
    fhir_server.load(sample_patient("S5", patient))
    ehr, service = production.ehr, production.service
    hook = f"{service.url}/cds-services/neckcheck-patient-view"
    card = requests.post(
        hook, json=hook_request("S5-observations.json"), headers=production.signer.headers(hook), timeout=10
    ).json()["cards"][0]
    (link,) = [x for x in card["links"] if x["type"] == "smart"]
    assert card["links"][0] is link  # preliminary: the app comes first
    page.goto(f"{link['url']}?iss={ehr.iss}&launch={ehr.launch_token(patient)}")
    shows(page, "low", "preliminary")  # discovery, authorize (PKCE), token, then the service read
    assert ehr.issued_tokens() == 1
    assert ehr.introspections() == 1  # the service verified the token before it read the chart
    assert page.url == f"{service.url}/app/"  # code and state are not left in the address bar
    answer(
        page,
        {"vision-change": False, "slurred-speech": False, "weakness": False, "symptoms-worsening": False},
    )
    shows(page, "low", "final")
    assert "HTTP 200" in save(page)  # through the EHR, with the clinician's token
    saved = counts(fhir_server, patient)
    assert saved == {"QuestionnaireResponse": 1, "RiskAssessment": 1, "ServiceRequest": 0}
    ehr.revoke_tokens()  # signed out meanwhile: the EHR refuses the next save, and the page says so
    said = save(page)
    assert "refused" in said and "HTTP 401" in said
    assert problems == ["Failed to load resource: the server responded with a status of 401 (UNAUTHORIZED)"]
    problems.clear()
    assert counts(fhir_server, patient) == saved
    production.service.stop()
    turns = [r for r in production.audit() if r["channel"] == "app"]
    assert [(r["caller"], r["status"]) for r in turns] == [
        (f"{ISS}|{CLINICIAN}", "preliminary"),
        (f"{ISS}|{CLINICIAN}", "final"),
    ]


def test_a_revoked_session_is_told_to_open_the_app_again(
    page: Page, production: Production, fhir_server: FhirServer, problems: list[str]
) -> None:
    patient = "app-ehr-revoked"
    fhir_server.load(sample_patient("S5", patient))
    ehr, service = production.ehr, production.service
    page.goto(f"{service.url}/app/launch?iss={ehr.iss}&launch={ehr.launch_token(patient)}")
    shows(page, "low", "preliminary")
    ehr.revoke_tokens()
    page.check("[data-fact=vision-change] input[value=false]")
    page.click("[data-testid=submit-answers]")
    page.wait_for_selector("#state.error")
    assert "open the app again from the EHR" in page.inner_text("#state")
    assert problems == ["Failed to load resource: the server responded with a status of 401 (UNAUTHORIZED)"]
    problems.clear()


def test_a_patient_with_nothing_recorded_is_asked_round_by_round(
    page: Page, service: Server, fhir_server: FhirServer
) -> None:
    patient = "app-empty"
    fhir_server.load(patient_transaction(patient))  # the Patient alone
    page.goto(f"{service.url}/app/?iss={fhir_server.url}&patient={patient}")
    shows(page, "unknown", "no data")
    assert asked(page) == [*URGENT, "facial-numbness", "neck-pain"]
    assert page.locator("[data-testid=save-to-chart]").count() == 0  # nothing to save yet
    accessible(page)
    answer(page, {**dict.fromkeys(URGENT, False), "facial-numbness": True, "neck-pain": False})
    shows(page, "low", "preliminary")  # what the numbness opens comes next: a choice and a number too
    assert sorted(asked(page)) == ["dizziness", "facial-numbness-days", "facial-numbness-side", "headache"]
    accessible(page)
    page.locator("[data-fact=facial-numbness-side] input").first.check()
    page.fill("[data-fact=facial-numbness-days] input", "3")
    answer(page, {"headache": False, "dizziness": False})
    page.wait_for_selector("[data-testid=status]:text-is('final')")
    assert page.locator("[data-testid=ask]").count() == 0


@pytest.mark.parametrize(
    ("locale", "zone", "as_of", "born"),
    [
        ("en-GB", "Europe/Berlin", "10 Mar 2026, 10:00", "14 Jun 1979"),
        ("en-US", "America/New_York", "Mar 10, 2026, 5:00 AM", "Jun 14, 1979"),
    ],
)
def test_the_patient_and_the_times_are_shown_as_the_clinicians_browser_reads_them(
    browsing: Callable[..., Page], service: Server, locale: str, zone: str, as_of: str, born: str
) -> None:
    """Name, sex and age instead of "Patient scn-5"; times in the browser's locale and time zone, the
    service's ISO form (UTC) kept as the tooltip."""
    page = browsing(locale, zone)
    page.goto(f"{service.url}/app/?sample=S5&patient=scn-5")
    shows(page, "low", "preliminary")
    person = page.eval_on_selector_all("[data-testid=patient] dd", "cells => cells.map(c => c.textContent)")
    assert person == ["Maren Holt", "female", f"46 years (born {born})", "scn-5"]
    shown = page.locator(".result .meta time")
    assert (shown.inner_text(), shown.get_attribute("title")) == (as_of, "2026-03-10T09:00:00Z")
    first = page.locator("table.evidence td:last-child time").first
    assert (first.inner_text(), first.get_attribute("title")) == (as_of, "2026-03-10T09:00:00Z")
    accessible(page)


def test_the_clinicians_answers_are_shown_apart_from_the_chart(page: Page, service: Server) -> None:
    page.goto(f"{service.url}/app/?sample=S5&patient=scn-5")
    shows(page, "low", "preliminary")
    answer(page, {"weakness": False})
    page.wait_for_selector("[data-testid=your-answers]")
    mine = page.locator("[data-testid=your-answers]")
    assert mine.locator("h2").inner_text() == "Your answers"
    assert mine.locator("p").first.inner_text().startswith("1 answer given here in this session")
    assert mine.locator("[data-fact=weakness] td").first.inner_text() == "no"
    on_record = page.locator("[aria-labelledby=evidence-title]")
    assert on_record.locator("h2").inner_text() == "On record"
    assert on_record.locator("[data-fact=weakness]").count() == 0
    assert on_record.locator("[data-fact=facial-numbness]").count() == 1
    accessible(page)


def test_every_urgent_sign_can_still_be_recorded_once_one_is_present(page: Page, service: Server) -> None:
    page.goto(f"{service.url}/app/?sample=S5&patient=scn-5")
    shows(page, "low", "preliminary")
    answer(page, {"weakness": True})
    shows(page, "high", "final")
    also = page.eval_on_selector_all(
        "[data-testid=ask-also] > [data-fact]", "nodes => nodes.map(n => n.dataset.fact)"
    )
    assert also == ["vision-change", "slurred-speech", "symptoms-worsening"]
    accessible(page)
    page.check("[data-testid=ask-also] [data-fact=vision-change] input[value=true]")
    page.click("[data-testid=submit-answers]")
    page.wait_for_selector("[data-testid=your-answers] [data-fact=vision-change]")
    shows(page, "high", "final")
    assert page.inner_text("[data-testid=your-answers] [data-fact=vision-change] td") == "yes"
    assert page.inner_text("[data-testid=your-answers] [data-fact=weakness] td") == "yes"  # kept


def test_records_not_used_are_listed_when_nothing_on_record_counts(
    page: Page, service: Server, fhir_server: FhirServer
) -> None:
    """A chart whose only record about the rules was entered in error: no result, and the record is
    listed as not used, with why, rather than hidden."""
    patient = "app-in-error"
    bundle = json.loads((SCENARIOS / "S13-observations.json").read_text(encoding="utf-8"))
    (in_error,) = [e for e in bundle["entry"] if e["resource"]["status"] == "entered-in-error"]
    resource = copy.deepcopy(in_error["resource"])
    resource["subject"] = {"reference": f"Patient/{patient}"}
    resource["effectiveDateTime"] = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    fhir_server.load(patient_transaction(patient, {"entry": [{"resource": resource}]}))
    page.goto(f"{service.url}/app/?iss={fhir_server.url}&patient={patient}")
    shows(page, "unknown", "no data")
    page.click("[data-testid=not-used] summary")
    listed = page.inner_text("[aria-labelledby=not-used-title]")
    assert listed.startswith("Not used")
    assert "weakness: not used (entered in error)" in listed
    accessible(page)
