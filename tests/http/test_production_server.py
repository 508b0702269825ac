"""The container's exact CMD (parsed from the Dockerfile), run on 127.0.0.1: what hospital IT deploys.

No container engine runs on the build machines, so the command, its config and its behaviour are tested
outside one: health, readiness, metrics summed over two workers, an assessment, and a SIGTERM during a
slow request that still completes (graceful shutdown).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.cds.support import hook_request, scenario_resources, searchset
from tests.live import Server, dockerfile_cmd, running, start
from tests.scenarios import body


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    with running(tmp_path, dockerfile_cmd(), NECKCHECK_WORKERS="2") as started:
        yield started


def start_production(tmp_path: Path, **env: str) -> Server:
    return start(tmp_path, dockerfile_cmd(), NECKCHECK_WORKERS="2", **env)


def test_the_dockerfile_cmd_is_neckcheck_serve() -> None:
    assert dockerfile_cmd() == ["neckcheck", "serve"]


def test_health_readiness_metrics_and_an_assessment(server: Server) -> None:
    assert requests.get(f"{server.url}/healthz", timeout=5).json()["status"] == "ok"
    assert requests.get(f"{server.url}/readyz", timeout=5).json()["status"] == "ready"
    for _ in range(6):  # spread over both workers
        answer = requests.post(
            f"{server.url}/fhir/$assess",
            data=body("S7-observations.json"),
            headers={"Content-Type": "application/fhir+json"},
            timeout=10,
        )
        assert answer.status_code == 200
        assert answer.json()["entry"][0]["resource"]["resourceType"] == "RiskAssessment"
    metrics = requests.get(f"{server.url}/metrics", timeout=5).text
    # every worker's count, added up (PROMETHEUS_MULTIPROC_DIR)
    assert 'neckcheck_assessments_total{risk="high",status="final"} 6.0' in metrics
    assert re.search(
        r'neckcheck_http_requests_total\{method="POST",route="/fhir/\$assess",status="200"\} 6\.0', metrics
    )


def test_sigterm_lets_a_slow_request_finish(tmp_path: Path, httpserver: HTTPServer) -> None:
    server = start_production(
        tmp_path,
        NECKCHECK_FHIR_READ_TIMEOUT="10",
        NECKCHECK_CDS_FHIR_DEADLINE="10",  # longer than the slow search below
        NECKCHECK_GRACEFUL_TIMEOUT="20",
    )
    # recorded now: the server assesses a hook call at its own clock
    patient, data = scenario_resources("S7-observations.json", recorded=dt.datetime.now(dt.UTC))

    def slow_search(request: Request) -> Response:
        time.sleep(3)
        return Response(json.dumps(searchset(data)), content_type="application/fhir+json")

    httpserver.expect_request(f"/fhir/Patient/{patient}").respond_with_json(
        {"resourceType": "Patient", "id": patient}
    )
    httpserver.expect_request("/fhir/Observation").respond_with_handler(slow_search)
    httpserver.expect_request("/fhir/QuestionnaireResponse").respond_with_json(searchset([]))
    request = hook_request("S7-observations.json", prefetch=False)
    request["fhirServer"] = httpserver.url_for("/fhir")
    outcome: dict[str, object] = {}

    def call() -> None:
        answer = requests.post(f"{server.url}/cds-services/neckcheck-patient-view", json=request, timeout=30)
        outcome["status"], outcome["cards"] = answer.status_code, answer.json()["cards"]

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(1.0)  # the request is now waiting on the slow FHIR server
    server.process.send_signal(signal.SIGTERM)
    caller.join(timeout=30)
    assert outcome.get("status") == 200
    assert outcome["cards"][0]["indicator"] == "critical"  # type: ignore[index]
    assert server.process.wait(timeout=30) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/healthz", timeout=2)
