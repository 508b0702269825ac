"""The service as ``make run`` starts it: gunicorn with service/gunicorn.conf.py on 127.0.0.1, real HTTP."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.debian import apt_install
from tests.live import ROOT, running
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


def readme_curl_examples() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n((?:curl|sed) .*?)\n```", readme, re.S)


def test_the_readme_has_its_five_curl_examples() -> None:
    assert len(readme_curl_examples()) == len(EXAMPLES)


@pytest.fixture(scope="module")
def curl() -> str:
    """The README's examples are curl commands: a clean Debian machine has no curl, so install it."""
    if shutil.which("curl") is None:
        apt_install("curl")
    found = shutil.which("curl")
    assert found, "apt-get installed curl but it is not on PATH"
    return found


EXAMPLES = ["assess", "preliminary", "populate-loop", "cds-hooks-stale", "cds-hooks"]  # in README order


@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=EXAMPLES)
def test_the_readme_curl_examples_work_as_written(curl: str, base_url: str, index: int) -> None:
    command = readme_curl_examples()[index].replace("http://127.0.0.1:8080", base_url)
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    kind = EXAMPLES[index]
    if kind == "cds-hooks":
        assert out["cards"][0]["indicator"] == "critical"
        return
    if kind == "cds-hooks-stale":  # recorded 2026-03-10, assessed at today's clock: every reading is stale
        (card,) = out["cards"]
        assert card["indicator"] == "warning" and card["summary"].startswith("Preliminary")
        assert "Weakness was recorded present on 2026-03-10: ask again." in card["detail"]
        return
    (guidance,) = [e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "GuidanceResponse"]
    if kind == "assess":
        assert summary(out) == EXPECTED["S1-observations.json"]
    elif kind == "preliminary":
        assert summary(out) == EXPECTED["S5-observations.json"]
        assert guidance["status"] == "data-required" and len(guidance["dataRequirement"]) == 4
    else:  # the loop ends final, with S5's orders
        assert summary(out) == {**EXPECTED["S5-observations.json"], "status": "final"}
        assert guidance["status"] == "success"


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
