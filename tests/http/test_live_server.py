"""The service as ``make run`` starts it: gunicorn with service/gunicorn.conf.py on 127.0.0.1, real HTTP.
The README's and the documentation's curl examples run against it in tests/docs/test_curl_examples.py."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.live import running
from tests.scenarios import EXPECTED, SCENARIOS
from tests.support import summary


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running(tmp_path_factory.mktemp("live")) as server:  # exactly the `make run` command
        yield server.url


def test_assess_over_real_http(base_url: str) -> None:
    name = "S7-observations.json"
    response = requests.post(
        f"{base_url}/fhir/$assess",
        data=(SCENARIOS / name).read_bytes(),
        headers={"Content-Type": "application/fhir+json"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    assert summary(response.json()) == EXPECTED[name]


def test_bad_request_over_real_http_is_an_operation_outcome(base_url: str) -> None:
    response = requests.post(
        f"{base_url}/fhir/$assess", data=b"{", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_neckcheck_serve_runs_the_same_server(tmp_path: Path) -> None:
    neckcheck = str(Path(sys.executable).with_name("neckcheck"))
    with running(tmp_path, [neckcheck, "serve", "--workers", "2"]) as server:  # bind from NECKCHECK_BIND
        assert requests.get(f"{server.url}/readyz", timeout=5).json()["status"] == "ready"
        for _ in range(4):
            requests.get(f"{server.url}/healthz", timeout=5)
        metrics = requests.get(f"{server.url}/metrics", timeout=5).text
        # both workers' counts, added up: the config file ran before the app was imported
        counted = re.search(
            r'neckcheck_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)', metrics
        )
        assert counted and float(counted.group(1)) >= 5  # 4 here + the start-up probe(s)
