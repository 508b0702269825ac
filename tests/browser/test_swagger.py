"""Swagger UI at /docs, as an integration engineer uses it: "Try it out" calls the service the page was
opened on, whatever its host and port (openapi.yaml's server is relative), never a fixed 127.0.0.1:8080."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.live import Server


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_try_it_out_calls_the_service_the_page_came_from(
    chromium: Browser, service: Server, host: str
) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    assert port != 8080  # not the port the document used to name
    origin = f"http://{host}:{port}"
    page = chromium.new_page()
    page.goto(f"{origin}/docs")
    assess = page.locator("#operations-operation-assess")  # POST /fhir/$assess, tag "operation"
    assess.locator(".opblock-summary").click()
    assess.get_by_role("button", name="Try it out").click()  # the body is the document's S1 example
    assess.get_by_role("button", name="Execute").click()
    status = assess.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=15_000)
    assert assess.locator(".request-url pre").inner_text().startswith(f"{origin}/fhir/$assess?")
    assert status.inner_text() == "200"
    assert (
        '"RiskAssessment"'
        in assess.locator(".live-responses-table .response .response-col_description").inner_text()
    )
    page.close()
