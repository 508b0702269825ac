"""The front door: ``GET /`` is a page a newcomer can use, not a JSON 404 (issue 12, "A front door")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.browser.sdc import browser, check_accessibility
from tests.live import Server, running


def test_the_front_door_says_what_this_is_and_where_to_go(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "neckcheck-escalation 1.1.0" in text
    assert re.search(r"neckcheck <span class=\"version\">[0-9][^<]*</span>", text)
    assert "script" not in text and "style=" not in text  # nothing the CSP would have to allow
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    links = set(re.findall(r'href="(/[^"]*)"', text))
    assert {"/docs", "/fhir/metadata", "/cds-services", "/home.css"} <= links
    for link in sorted(links):
        assert client.get(link).status_code == 200, link


def test_every_other_unknown_route_is_still_a_fhir_404(client: FlaskClient) -> None:
    for path in ("/index.html", "/home", "/favicon.ico"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer.mimetype == "application/fhir+json", path


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(tmp_path_factory.mktemp("home")) as server:
        yield server


def test_the_front_door_in_a_browser_is_accessible(service: Server, tmp_path: Path) -> None:
    """WCAG 2.1 AA by axe-core in headless Chromium, at tablet width; no console error, no CSP violation."""
    with browser() as chromium:
        context = chromium.new_context(viewport={"width": 820, "height": 1180}, bypass_csp=False)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(f"{service.url}/")
        assert page.locator("h1").inner_text().startswith("neckcheck")
        assert problems == []
        page.keyboard.press("Tab")  # keyboard only: the first link takes the focus
        assert page.evaluate("document.activeElement.tagName") == "A"
        checked = chromium.new_context(viewport={"width": 820, "height": 1180}, bypass_csp=True).new_page()
        checked.goto(f"{service.url}/")  # axe is injected as a script: allowed in this checking context only
        assert check_accessibility(checked) == []
        page.screenshot(path=str(tmp_path / "home.png"), full_page=True)
