"""Fixtures of the browser tests: the service under gunicorn, the page server, Chromium, the rendered form."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser

from tests.browser.sdc import Form, browser, page_server
from tests.live import Server, running


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(tmp_path_factory.mktemp("service")) as server:
        yield server


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser() as started:
        yield started


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with page_server() as url:
        yield url


@pytest.fixture()
def form(chromium: Browser, site: str, service: Server) -> Iterator[Form]:
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{site}/index.html")
    page.wait_for_function("() => window.LForms && window.LForms.Util && window.renderQuestionnaire")
    questionnaire = requests.get(f"{service.url}/fhir/Questionnaire/neckcheck-screen", timeout=10).json()
    shown = Form(page)
    shown.render(questionnaire)
    yield shown
    page.close()
    assert errors == [], errors  # LHC-Forms raised nothing while showing and answering the form
