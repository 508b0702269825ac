"""NECKCHECK_APP_DEMO: the demo's sample patients are served only where an operator switched them on
(`make run` does; the container, compose and Kubernetes do not: tests/deploy/test_container_config.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from service.config import Settings

SAMPLE = {"sample": "S5", "patient": "scn-5"}


def test_the_demo_is_off_by_default() -> None:
    assert Settings().app_demo is False
    assert Settings.from_env({}).app_demo is False
    assert Settings.from_env({"NECKCHECK_APP_DEMO": "1"}).app_demo is True


@pytest.mark.parametrize("insecure_dev", [False, True])  # insecure dev alone does not bring the demo back
def test_when_off_the_demo_is_a_clear_404_and_nothing_links_to_it(
    make_app: Callable[..., Flask], insecure_dev: bool
) -> None:
    client = make_app(insecure_dev=insecure_dev).test_client()
    page = client.get("/app/demo")
    assert (page.status_code, page.mimetype) == (404, "text/html")
    assert "The demo is switched off" in page.get_data(as_text=True)
    assert "NECKCHECK_APP_DEMO=1" in page.get_data(as_text=True)
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    turn = client.post("/app/api/assess", json=SAMPLE)
    assert (turn.status_code, turn.mimetype) == (404, "application/fhir+json")
    issue = turn.get_json()["issue"][0]
    assert issue["expression"] == ["sample"] and "NECKCHECK_APP_DEMO" in issue["diagnostics"]
    assert "/app/demo" not in client.get("/").get_data(as_text=True)
    assert "data-demo-list" not in client.get("/app/").get_data(as_text=True)


def test_when_on_the_demo_lists_and_runs_its_samples(make_app: Callable[..., Flask]) -> None:
    client = make_app(app_demo=True).test_client()
    assert client.get("/app/demo").status_code == 200
    assert client.post("/app/api/assess", json=SAMPLE).get_json()["status"] == "preliminary"
    assert 'href="/app/demo"' in client.get("/").get_data(as_text=True)
    assert 'data-demo-list="/app/demo"' in client.get("/app/").get_data(as_text=True)
