"""The package as a user installs it: the wheel, in a fresh venv, used from a folder outside the checkout.

The wheel is built by ``pip wheel .`` from what a clone holds (the files git tracks or would track, none
it ignores: no .venv, nothing a previous ``make`` left behind), so a build step that only works in a
developer's checkout fails here. What runs is the installed copy only: no PYTHONPATH, no editable finder,
and the working directory is a temporary folder, so a file read from the source tree instead of the
package would fail these tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.live import ROOT, Server, running

EXAMPLE = ROOT / "tests" / "fixtures" / "scenarios" / "S1-observations.json"


@dataclass(frozen=True)
class Installed:
    bin: Path
    outside: Path  # a working directory that is not the checkout

    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return {**clean, "PATH": f"{self.bin}:{os.environ['PATH']}"}

    def run(self, *argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            cwd=self.outside,
            env=self.env(),
            input=stdin,
            capture_output=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    wheels = root / "wheels"
    clone = a_clone(root / "clone")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(wheels),
            str(clone),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("neckcheck-*.whl")
    target = root / "venv"
    venv.create(target, with_pip=True)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # as the Dockerfile does: the locked dependencies checked against their hashes, then the wheel alone
    lock = ["--require-hashes", "-r", str(ROOT / "requirements.lock")]
    subprocess.run([*pip, *lock], check=True, capture_output=True, timeout=600)
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    outside = root / "elsewhere"
    outside.mkdir()
    yield Installed(target / "bin", outside)


def a_clone(target: Path) -> Path:
    """The checkout as a clone of it would hold it once committed: tracked and untracked files, without
    the ignored ones; links stay links (service/data/ links to schemas/)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_symlink() or source.is_file():  # not a tracked file deleted in the worktree
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name, follow_symlinks=False)
    return target


@pytest.fixture(scope="module")
def served(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The installed service as ``neckcheck serve`` starts it (the demo on, as under ``make run``)."""
    folder = tmp_path_factory.mktemp("served")
    with running(folder, ["neckcheck", "serve"], cwd=installed.outside, **installed.env()) as server:
        yield server


def test_the_wheel_carries_the_data_the_service_reads(installed: Installed) -> None:
    probe = (
        "import service, service.packaged as p, json; "
        "print(json.dumps([service.__file__, str(p.DATA_DIR), "
        "sorted(str(f.relative_to(p.DATA_DIR)) for f in p.DATA_DIR.rglob('*') if f.is_file())]))"
    )
    done = installed.run("python", "-c", probe)
    assert done.returncode == 0, done.stderr.decode()
    module, data_dir, files = json.loads(done.stdout)
    assert "site-packages" in module and not module.startswith(str(ROOT))
    assert not Path(data_dir).is_symlink()
    packaged = {str(p.relative_to(ROOT)) for p in (ROOT / "schemas").rglob("*.json")}
    packaged |= {str(p.relative_to(ROOT)) for p in (ROOT / "schemas").rglob("*.cql")}  # the CQL library
    scenarios = ROOT / "tests" / "fixtures" / "scenarios"
    samples = {f"samples/{p.name}" for p in scenarios.glob("S*-observations.json")}  # the app's demo
    assert {f"{f}" for f in files} == {*packaged, *samples, "openapi.yaml"}


def test_the_library(installed: Installed) -> None:
    script = (
        "import json, sys; from service import assess; "
        "out = assess(json.load(sys.stdin)); "
        "print(out['entry'][0]['resource']['prediction'][0]['qualitativeRisk']['coding'][0]['code'])"
    )
    done = installed.run("python", "-c", script, stdin=EXAMPLE.read_bytes())
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "moderate"


def test_the_command_line(installed: Installed) -> None:
    done = installed.run("neckcheck", "evaluate", str(EXAMPLE))
    assert done.returncode == 0, done.stderr.decode()
    bundle = json.loads(done.stdout)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "RiskAssessment" and kinds.count("ServiceRequest") == 2
    rules = installed.run("neckcheck", "rules")
    assert rules.returncode == 0 and b"urgent-signs" in rules.stdout


def test_the_service_answers_an_assessment(served: Server) -> None:
    answer = requests.post(
        f"{served.url}/fhir/$assess",
        data=EXAMPLE.read_bytes(),
        headers={"Content-Type": "application/fhir+json"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["entry"][0]["resource"]["status"] == "final"
    contract = requests.get(f"{served.url}/openapi.yaml", timeout=10)
    assert contract.status_code == 200
    assert contract.content == (ROOT / "openapi.yaml").read_bytes()
    assert requests.get(f"{served.url}/readyz", timeout=10).json()["status"] == "ready"
    library = requests.get(f"{served.url}/fhir/Library/neckcheck-escalation-logic", timeout=10)
    assert library.status_code == 200, library.text  # the CQL and ELM ship in the wheel
    assert [c["contentType"] for c in library.json()["content"]] == ["text/cql", "application/elm+json"]


def test_the_clinician_app_is_whole(served: Server) -> None:
    """The app's page and its browser library are in the wheel: a build from a clone needs no extra step
    (the library is in the repository with its sha512, service/app_ui/vendor.json)."""
    page = requests.get(f"{served.url}/app/", timeout=10)
    assert page.status_code == 200, page.text
    assert '<script src="/app/vendor/fhir-client.js"' in page.text
    library = requests.get(f"{served.url}/app/vendor/fhir-client.js", timeout=10)
    assert library.status_code == 200
    assert (
        library.content == (ROOT / "service" / "app_ui" / "static" / "vendor" / "fhir-client.js").read_bytes()
    )
