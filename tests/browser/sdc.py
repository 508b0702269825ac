"""A real SDC form engine in a real browser: NLM's LHC-Forms (npm ``lforms``) in Debian's headless Chromium,
driven by playwright with the system browser.

What a clean machine lacks is installed here, never skipped: Debian's ``chromium`` (apt-get), and the
``lforms`` package from the npm registry (its tarball, checked against the sha512 in vendor.json, unpacked
into ``.vendor/``, which git ignores). The page (``page/``) and LHC-Forms are served by a loopback HTTP
server of this module; the browser is started with every background connection off, so nothing is
fetched from anywhere but 127.0.0.1.
"""

from __future__ import annotations

import http.server
import io
import json
import re
import shutil
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import Browser, Page, sync_playwright

from service.npm import tarball
from tests.debian import apt_install
from tests.live import Server

HERE = Path(__file__).parent
VENDOR = HERE / ".vendor"
CHROMIUM = Path("/usr/bin/chromium")
# as the machine notes advise for a closed network: no background traffic, no first-run, no sandbox as root
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> Path:
    if not CHROMIUM.exists():
        apt_install("chromium")
    return CHROMIUM


def vendored(name: str) -> Path:
    """The unpacked folder of a pinned npm package of vendor.json (fetched once, then reused).

    Fetched and checked against its pinned sha512 as ``make vendor`` fetches the app's own library
    (``service.npm.tarball``): from the npm registry the machine is set up for, no Node.js."""
    spec = json.loads((HERE / "vendor.json").read_text(encoding="utf-8"))[name]
    target = VENDOR / f"{name}-{spec['version']}"
    if target.is_dir():
        return target
    data = tarball(name, spec["version"], spec["integrity"])
    staging = VENDOR / f"unpacking-{name}"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(staging, filter="data")
    (staging / spec["use"]).rename(target)  # whole, or not at all: a half-unpacked folder is never reused
    shutil.rmtree(staging)
    return target


def lforms() -> Path:
    return vendored("lforms")


def check_accessibility(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page as it stands (empty when clean)."""
    # evaluated through the DevTools protocol rather than added as a <script>: a page under a strict CSP
    # (the app's) refuses injected scripts, and it is the page as users get it that must be checked
    source = (vendored("axe-core") / "axe.min.js").read_text(encoding="utf-8")
    page.evaluate(f"() => {{ {source}\n; window.axe = axe; }}")
    tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
    result: dict[str, Any] = page.evaluate("(tags) => axe.run({runOnly: {type: 'tag', values: tags}})", tags)
    return list(result["violations"])


class _Files(http.server.SimpleHTTPRequestHandler):
    """``/lforms/...`` from the unpacked package, everything else from ``page/``."""

    lforms_dir: Path

    def translate_path(self, path: str) -> str:
        route = path.split("?", 1)[0]
        if route.startswith("/lforms/"):
            return str(self.lforms_dir / route[len("/lforms/") :])
        return str(HERE / "page" / route.lstrip("/"))

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's name
        pass


@contextmanager
def page_server() -> Iterator[str]:
    handler = type("Files", (_Files,), {"lforms_dir": lforms()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        started = playwright.chromium.launch(executable_path=str(chromium()), args=CHROMIUM_ARGS)
        try:
            yield started
        finally:
            started.close()


class Form:
    """The Questionnaire as LHC-Forms shows it, answered the way a nurse would: by clicking."""

    def __init__(self, page: Page):
        self.page = page

    def render(self, questionnaire: dict[str, Any], response: dict[str, Any] | None = None) -> None:
        self.page.evaluate("([q, r]) => window.renderQuestionnaire(q, r)", [questionnaire, response])
        self.page.wait_for_selector("lhc-item")

    def item(self, link_id: str) -> Any:
        """An item's element; LHC-Forms ids are ``item-<linkId>/<n>/<n>...`` (group and item index)."""
        return self.page.locator(f'lhc-item[id^="item-{link_id}/"]')

    def shown(self, link_id: str) -> bool:
        return self.item(link_id).count() > 0 and self.item(link_id).first.is_visible()

    def answer_yes_no(self, link_id: str, value: bool | None) -> None:
        choice = {True: "true", False: "false", None: "null"}[value]
        self.page.locator(f'label[id^="{link_id}/"][id$="|{choice}"]').first.click()

    def choose(self, link_id: str, display: str) -> None:
        """Open the item's answer list and click the answer shown as ``display`` (listed as "n: display")."""
        self.item(link_id).locator("input").first.click()
        exact = re.compile(rf"^\d+:\s+{re.escape(display)}$")
        self.page.locator("li").filter(has_text=exact).first.click()

    def type_number(self, link_id: str, value: int) -> None:
        field = self.item(link_id).locator("input").first
        field.fill(str(value))
        field.press("Tab")

    def response(self) -> dict[str, Any]:
        result: dict[str, Any] = self.page.evaluate("() => window.renderedResponse()")
        return result


FHIR = {"Content-Type": "application/fhir+json"}


def assess(service: Server, response: dict[str, Any], patient: str = "p1") -> dict[str, Any]:
    """The renderer's QuestionnaireResponse as an EHR would send it: about the patient, completed."""
    response = {**response, "subject": {"reference": f"Patient/{patient}"}, "status": "completed"}
    response.setdefault("authored", "2026-03-10T09:00:00Z")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": "2026-03-10T09:00:00Z",
        "entry": [{"fullUrl": "urn:uuid:6f1c1f5e-4b3a-4d0e-9c7e-2b1f0a9d8c7b", "resource": response}],
    }
    answer = requests.post(f"{service.url}/fhir/$assess", data=json.dumps(bundle), headers=FHIR, timeout=10)
    assert answer.status_code == 200, answer.text
    out: dict[str, Any] = answer.json()
    return out
