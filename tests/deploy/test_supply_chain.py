"""The supply chain hospital IT checks: hashed locks that match pyproject.toml, an SBOM that matches the lock.

pyproject.toml declares the dependencies; ``make lock`` resolves them into requirements.lock (runtime, what
the image installs with --require-hashes) and requirements-dev.lock (runtime + dev, what ``make`` installs).
A lock is stale when pyproject.toml asks for something it does not pin, or pins at another version; it is
also wrong when it holds a package nothing requires. Both are checked by walking the requirement graph
from pyproject.toml through the installed packages' own metadata (this venv is installed from the locks).
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.test_container_config import dockerfile_stages

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
# the extras requirements-dev.lock covers (Makefile `lock`): the dev tools, and what the screening tests run
DEV_EXTRAS = ("dev", "screen", "spark")
DEV = [Requirement(r) for extra in DEV_EXTRAS for r in PROJECT["optional-dependencies"][extra]]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\b")


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: tuple[str, ...]


def read_lock(path: Path) -> dict[str, Pin]:
    """name (canonical) -> version and sha256 hashes, from a ``uv pip compile --generate-hashes`` file."""
    pins: dict[str, Pin] = {}
    name = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            name = canonicalize_name(match.group(1))
            assert name not in pins, f"{path.name}: {name} pinned twice"
            pins[name] = Pin(match.group(2), ())
        elif line.startswith(" ") and (found := HASH.findall(line)):
            pins[name] = Pin(pins[name].version, pins[name].hashes + tuple(found))
    return pins


def closure(roots: Iterable[Requirement], lock: dict[str, Pin]) -> dict[str, str]:
    """Every package the roots need (markers for this interpreter, extras followed), as pinned in ``lock``.

    Fails on a requirement the lock does not pin, or pins at a version outside the requirement's range.
    """
    env: dict[str, str] = dict(default_environment())
    needed: dict[str, str] = {}
    todo = [(r, "pyproject.toml") for r in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, wanted_by = todo.pop()
        name = canonicalize_name(req.name)
        assert name in lock, f"{wanted_by} needs {req}, which the lock does not pin: run make lock"
        version = lock[name].version
        assert req.specifier.contains(version, prereleases=True), (
            f"{wanted_by} needs {req}, the lock pins {name}=={version}: run make lock"
        )
        needed[name] = version
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        installed = metadata.distribution(name)
        assert installed.version == version, f"the venv has {name} {installed.version}: run make"
        for line in installed.requires or []:
            sub = Requirement(line)
            extras = ["", *sorted(req.extras)]
            if sub.marker is None or any(sub.marker.evaluate({**env, "extra": e}) for e in extras):
                todo.append((sub, f"{name}=={version}"))
    return needed


@pytest.fixture(scope="module")
def runtime_lock() -> dict[str, Pin]:
    return read_lock(RUNTIME_LOCK)


@pytest.fixture(scope="module")
def dev_lock() -> dict[str, Pin]:
    return read_lock(DEV_LOCK)


def test_every_runtime_dependency_is_pinned_exactly_in_pyproject() -> None:
    loose = [str(r) for r in RUNTIME + DEV if [s.operator for s in r.specifier] != ["=="]]
    assert not loose, f"pin these with == in pyproject.toml: {loose}"


def test_the_runtime_lock_pins_pyproject_dependencies_at_their_versions(runtime_lock: dict[str, Pin]) -> None:
    for req in RUNTIME:
        (spec,) = req.specifier
        pin = runtime_lock.get(canonicalize_name(req.name))
        assert pin is not None, f"{req} is not in requirements.lock: run make lock"
        assert pin.version == spec.version, f"{req}, but requirements.lock has {pin.version}: run make lock"


def test_the_runtime_lock_is_exactly_what_pyproject_needs(runtime_lock: dict[str, Pin]) -> None:
    needed = closure(RUNTIME, runtime_lock)
    stray = sorted(set(runtime_lock) - set(needed))
    assert not stray, f"requirements.lock pins what nothing requires: {stray}: run make lock"


def test_the_dev_lock_is_the_runtime_lock_plus_the_dev_tools(
    runtime_lock: dict[str, Pin], dev_lock: dict[str, Pin]
) -> None:
    for name, pin in runtime_lock.items():
        assert name in dev_lock and dev_lock[name].version == pin.version, f"{name}: the locks disagree"
    needed = closure(RUNTIME + DEV, dev_lock)
    stray = sorted(set(dev_lock) - set(needed))
    assert not stray, f"requirements-dev.lock pins what nothing requires: {stray}: run make lock"


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_pin_has_hashes_and_says_how_to_regenerate(lock: Path) -> None:
    pins = read_lock(lock)
    assert len(pins) >= len(RUNTIME)
    assert not [name for name, pin in pins.items() if not pin.hashes], "pins without a sha256 hash"
    assert "#    make lock" in lock.read_text(encoding="utf-8").splitlines()[1]


def test_the_image_installs_the_lock_with_hashes_then_the_project_alone() -> None:
    runs = [args for name, args in dockerfile_stages()[0] if name == "RUN" and "pip install" in args]
    assert runs[0] == "pip install --no-cache-dir --require-hashes -r /src/requirements.lock"
    assert all("--no-deps" in args for args in runs[1:])
    copies = [args for name, args in dockerfile_stages()[0] if name == "COPY"]
    assert copies[0] == "requirements.lock /src/"


def test_make_lock_resolves_the_dev_lock_with_every_extra_the_tests_need() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (line,) = [line for line in makefile.splitlines() if "-o requirements-dev.lock" in line]
    assert [e for e in DEV_EXTRAS if f"--extra {e} " not in line] == []


# ---- the SBOM ----


@pytest.fixture(scope="module")
def sbom(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What ``make sbom`` writes: a venv holding only requirements.lock, described by cyclonedx-py."""
    out = tmp_path_factory.mktemp("sbom") / "sbom.cdx.json"
    done = subprocess.run(
        ["make", "--no-print-directory", "sbom", f"SBOM={out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return document


def test_the_sbom_is_cyclonedx_about_neckcheck(sbom: dict[str, Any]) -> None:
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    root = sbom["metadata"]["component"]
    assert (root["name"], root["version"]) == (PROJECT["name"], PROJECT["version"])


def test_the_sbom_lists_every_locked_package_at_its_version(
    sbom: dict[str, Any], runtime_lock: dict[str, Pin]
) -> None:
    listed = {canonicalize_name(c["name"]): c["version"] for c in sbom["components"]}
    locked = {name: pin.version for name, pin in runtime_lock.items()}
    missing = {n: v for n, v in locked.items() if listed.get(n) != v}
    extra = {n: v for n, v in listed.items() if locked.get(n) != v}
    assert not missing and not extra, f"in the lock, not in the SBOM: {missing}; only in the SBOM: {extra}"
    purls = [c["purl"].removeprefix("pkg:pypi/").partition("@") for c in sbom["components"]]
    assert {canonicalize_name(name): version for name, _, version in purls} == locked


def test_the_sbom_records_licences_and_the_dependency_graph(sbom: dict[str, Any]) -> None:
    refs = {c["bom-ref"] for c in sbom["components"]}
    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in sbom["dependencies"]}
    assert refs <= set(graph)
    assert all(targets <= refs for ref, targets in graph.items() if ref in refs)
    flask = next(c for c in sbom["components"] if canonicalize_name(c["name"]) == "flask")
    assert flask["licenses"]
