"""The simulated EHR as a browser app meets it: the same launch, with the app's calls made by ``fetch`` from
a page on the app's origin in headless Chromium, so the CORS answers (preflights included) are judged
by a real browser rather than read off the headers.

The app's pages are empty: a loopback HTTP server serves the same blank page for every path, on two
origins (the registered app and a stranger).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page
from pytest_httpserver import HTTPServer

from tests.browser.sdc import browser
from tests.live import Server
from tests.smart_ehr import SmartEhr
from tests.support import facts_bundle

CLIENT = "neckcheck-app"
SCOPE = "launch openid fhirUser patient/Observation.rs"

# What the app does before the redirect (SMART 2.x §"EHR Launch" steps 1-2): discovery, then a PKCE pair
DISCOVER = """async (iss) => {
  const found = await (await fetch(`${iss}/.well-known/smart-configuration`)).json();
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const b64url = (b) => btoa(String.fromCharCode(...new Uint8Array(b)))
    .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  const verifier = b64url(bytes);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  return {authorize: found.authorization_endpoint, token: found.token_endpoint, verifier, challenge};
}"""
# ... and after it: the code exchange, a read and an operation with the token
EXCHANGE_AND_READ = """async ([tokenEndpoint, form, iss, bundle]) => {
  const granted = await fetch(tokenEndpoint, {method: 'POST', body: new URLSearchParams(form)});
  const token = await granted.json();
  const auth = {Authorization: `Bearer ${token.access_token}`};
  const read = await fetch(`${iss}/Questionnaire/neckcheck-screen`, {headers: auth});
  const assessed = await fetch(`${iss}/$assess`, {method: 'POST', body: bundle,
    headers: {...auth, 'Content-Type': 'application/fhir+json'}});
  const refused = await fetch(`${iss}/Questionnaire/neckcheck-screen`);
  return {token: granted.status, patient: token.patient, read: read.status,
          questionnaire: (await read.json()).resourceType, assessed: assessed.status,
          result: (await assessed.json()).resourceType, refused: refused.status,
          why: refused.headers.get('WWW-Authenticate')};
}"""
READ_ACROSS_ORIGINS = """async (url) => {
  try { await fetch(url); return 'read'; } catch (error) { return error.name; }
}"""


@contextmanager
def blank_site() -> Iterator[str]:
    """A loopback origin serving the same empty page for every GET (pytest-httpserver, a real server)."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request(re.compile(".*"), method="GET").respond_with_data(
        "<!doctype html><title>app</title>", content_type="text/html"
    )
    server.start()
    try:
        yield server.url_for("/").rstrip("/")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser() as started:
        yield started


@pytest.fixture()
def page(chromium: Browser) -> Iterator[Page]:
    opened = chromium.new_page()
    yield opened
    opened.close()


def test_an_ehr_launch_from_the_browser(page: Page, upstream: Server) -> None:
    with blank_site() as app, SmartEhr(f"{upstream.url}/fhir", CLIENT, f"{app}/callback", app) as ehr:
        page.goto(f"{app}/launch?iss={ehr.iss}&launch=x")
        found = page.evaluate(DISCOVER, ehr.iss)
        ask = {
            "response_type": "code",
            "client_id": CLIENT,
            "redirect_uri": f"{app}/callback",
            "launch": ehr.launch_token("p7"),
            "scope": SCOPE,
            "state": "s1",
            "aud": ehr.iss,
            "code_challenge": found["challenge"],
            "code_challenge_method": "S256",
        }
        page.goto(f"{found['authorize']}?{urlencode(ask)}")  # the EHR approves and sends the browser back
        back = urlsplit(page.url)
        assert f"{back.scheme}://{back.netloc}{back.path}" == f"{app}/callback"
        code = parse_qs(back.query)["code"][0]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f"{app}/callback",
            "client_id": CLIENT,
            "code_verifier": found["verifier"],
        }
        bundle = facts_bundle(facial_numbness=True, neck_pain=True)
        seen = page.evaluate(EXCHANGE_AND_READ, [found["token"], form, ehr.iss, json.dumps(bundle)])
    assert seen == {
        "token": 200,
        "patient": "p7",
        "read": 200,
        "questionnaire": "Questionnaire",
        "assessed": 200,
        "result": "Bundle",
        "refused": 401,
        "why": seen["why"],
    }
    assert seen["why"].lower().startswith("bearer")  # exposed to the app, so it can tell why


def test_a_page_of_another_origin_cannot_read_the_ehr(page: Page, upstream: Server) -> None:
    with (
        blank_site() as app,
        blank_site() as stranger,
        SmartEhr(f"{upstream.url}/fhir", CLIENT, f"{app}/callback", app) as ehr,
    ):
        page.goto(f"{app}/")
        assert page.evaluate(READ_ACROSS_ORIGINS, f"{ehr.iss}/.well-known/smart-configuration") == "read"
        page.goto(f"{stranger}/")
        assert page.evaluate(READ_ACROSS_ORIGINS, f"{ehr.iss}/.well-known/smart-configuration") == "TypeError"
