"""A real open-source FHIR R4 server for the tests: SEKMET FHIR R4 Tester (PyPI ``sekmet-fhir``, Apache-2.0).

The clinician app reads a patient's Observations and QuestionnaireResponses from a FHIR server and saves its
result there in one transaction of conditional creates. Its tests need a server that really does that, not a
fake of this project's making. SEKMET is a FastAPI server that stores resources in SQLite, indexes them for
search, runs transactions with rollback and conditional create (``ifNoneExist``), and answers CORS.

What a clean machine lacks is installed here, never skipped: a virtualenv of its own under ``.server/``
(which git ignores) holding exactly the pins of ``fhirserver/requirements.txt``, each checked against its
hashes (``pip --require-hashes``); it is reused while that file is unchanged. To move the pin, edit
``requirements.in`` and run
``.venv/bin/uv pip compile --generate-hashes --python-version 3.11 --python-platform linux
tests/fhirserver/requirements.in -o tests/fhirserver/requirements.txt``.
Each run starts the server on a free port of 127.0.0.1 with its database in a temporary folder
(``fhirserver/launch.py``), and stops it at the end.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.live import free_port, launch

HERE = Path(__file__).parent / "fhirserver"
PINS = HERE / "requirements.txt"
VENV = HERE / ".server"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def install() -> Path:
    """The server's Python, after installing the pinned and hash-checked packages if they changed."""
    python = VENV / "bin" / "python"
    stamp = VENV / "installed.sha256"
    wanted = hashlib.sha256(PINS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    shutil.rmtree(VENV, ignore_errors=True)  # whole, or not at all: a half-built venv is never reused
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True, timeout=300)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "--no-deps", "-r", str(PINS)], check=True, timeout=900)
    stamp.write_text(wanted)
    return python


@dataclass
class FhirServer:
    """A started server: ``url`` is its FHIR base (``http://127.0.0.1:<port>/fhir``)."""

    process: subprocess.Popen[bytes]
    url: str
    data: Path
    started_in: float  # seconds from the process start to the first CapabilityStatement

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=30)

    def get(self, path: str, **params: str | int) -> dict[str, Any]:
        answer = requests.get(f"{self.url}/{path}", params=params, headers=FHIR_JSON, timeout=30)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def post(self, bundle: dict[str, Any]) -> requests.Response:
        """POST a batch or transaction Bundle to the base (FHIR R4 §3.1.0.11); the raw answer."""
        return requests.post(self.url, data=json.dumps(bundle), headers=FHIR_JSON, timeout=60)

    def load(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Process a transaction Bundle; its transaction-response Bundle (it fails the test on refusal)."""
        answer = self.post(bundle)
        assert answer.status_code == 200, answer.text
        response: dict[str, Any] = answer.json()
        return response

    def count(self, resource_type: str, patient: str) -> int:
        """How many resources of a type the server holds about a patient (``_summary=count``)."""
        total: int = self.get(resource_type, patient=patient, _summary="count")["total"]
        return total


def patient_transaction(patient: str, *bundles: dict[str, Any]) -> dict[str, Any]:
    """A sample patient as a transaction: the Patient, then every resource of the ``bundles`` (collections
    such as the scenario fixtures), each ``PUT`` at its own id (update as create, FHIR R4 §3.1.0.4.3), so
    loading it twice changes nothing."""
    resources = [
        {"resourceType": "Patient", "id": patient, "name": [{"family": "Sample", "given": [patient]}]}
    ]
    resources += [entry["resource"] for bundle in bundles for entry in bundle["entry"]]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def start(folder: Path, settings: dict[str, Any] | None = None, port: int = 0) -> FhirServer:
    """Start the server on ``port`` (a free one by default); ``settings`` are SEKMET settings laid over
    launch.py's (``server_auth``, a ``base_url`` naming a proxy in front of it...)."""
    python = install()
    port = port or free_port()
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    command = [str(python), str(HERE / "launch.py"), str(port), str(data)]
    if settings:
        (folder / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
        command.append(str(folder / "settings.json"))
    url = f"http://127.0.0.1:{port}/fhir"
    process = launch(command, folder, f"{url}/metadata", "the FHIR server", cwd=folder, seconds=60)
    return FhirServer(process, url, data, time.monotonic() - began)


@contextmanager
def running(folder: Path) -> Iterator[FhirServer]:
    server = start(folder)
    try:
        yield server
    finally:
        server.stop()
