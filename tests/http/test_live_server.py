"""The service as ``make run`` starts it: gunicorn with service/gunicorn.conf.py on 127.0.0.1, real HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.scenarios import EXPECTED, SCENARIOS
from tests.support import summary

ROOT = Path(__file__).parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    database = tmp_path_factory.mktemp("live") / "neckcheck.db"
    env = {
        **os.environ,
        "NECKCHECK_BIND": f"127.0.0.1:{port}",
        "NECKCHECK_WORKERS": "1",
        "NECKCHECK_INSECURE_DEV": "1",  # as `make run` sets it
        "NECKCHECK_DATABASE_URL": f"sqlite:///{database}",
    }
    # the exact command of `make run`
    server = subprocess.Popen(
        [str(GUNICORN), "--config", "service/gunicorn.conf.py", "service.app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn did not start: {server.stderr.read() if server.stderr else ''!r}"
                )
            time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


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
    return re.findall(r"```sh\n(curl .*?)\n```", readme, re.S)


def test_the_readme_has_both_curl_examples() -> None:
    assert len(readme_curl_examples()) == 2


@pytest.mark.parametrize("index", [0, 1], ids=["assess", "cds-hooks"])
def test_the_readme_curl_examples_work_as_written(base_url: str, index: int) -> None:
    if shutil.which("curl") is None:
        pytest.skip(
            "curl is not installed on this machine; the same requests are checked above with requests"
        )
    command = readme_curl_examples()[index].replace("http://127.0.0.1:8080", base_url)
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    if index == 0:
        assert summary(out) == EXPECTED["S1-observations.json"]
    else:
        assert out["cards"][0]["indicator"] == "critical"
