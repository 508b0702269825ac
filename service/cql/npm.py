"""Install the CQL tools of ``cql/package-lock.json`` into ``cql/node_modules``, without npm.

Debian's ``nodejs`` package has no ``npm``, and the tools need nothing npm does beyond unpacking: no package
has an install script (checked here), so each tarball is fetched from the registry, refused unless its
sha512 matches the lock's ``integrity`` (``service.npm.tarball``, as the app's browser library is
fetched), and unpacked where the lock places it. ``npm ci`` in ``cql/`` gives the same tree.

A development tool (``make cql`` and the tests use it); nothing the service runs imports it.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any

from service.npm import tarball

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "cql"
MODULES = "node_modules/"


def locked(folder: Path = FOLDER) -> dict[str, dict[str, Any]]:
    """The lock's packages by their place under the folder (``node_modules/a/node_modules/b``)."""
    lock = json.loads((folder / "package-lock.json").read_text(encoding="utf-8"))
    packages: dict[str, dict[str, Any]] = lock["packages"]
    found = {place: spec for place, spec in packages.items() if place.startswith(MODULES)}
    scripts = [place for place, spec in found.items() if spec.get("hasInstallScript")]
    if scripts:
        raise RuntimeError(f"install scripts are not run here, and these need one: {scripts}")
    return found


def _installed(target: Path, version: str) -> bool:
    manifest = target / "package.json"
    if not manifest.is_file():
        return False
    return bool(json.loads(manifest.read_text(encoding="utf-8")).get("version") == version)


def _unpack(data: bytes, target: Path) -> None:
    """The tarball's one top folder (``package/`` for most) becomes ``target``, whole or not at all."""
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(staging, filter="data")
    (top,) = list(staging.iterdir())
    shutil.rmtree(target, ignore_errors=True)
    top.rename(target)
    shutil.rmtree(staging)


def install(folder: Path = FOLDER) -> list[str]:
    """Fetch every locked package not already in place; the ``name@version`` of each one fetched."""
    fetched = []
    for place, spec in sorted(locked(folder).items()):  # parents before the packages nested in them
        target = folder / place
        if _installed(target, spec["version"]):
            continue
        package = place.rsplit(MODULES, 1)[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        _unpack(tarball(package, spec["version"], spec["integrity"]), target)
        fetched.append(f"{package}@{spec['version']}")
    return fetched


if __name__ == "__main__":
    done = install()
    print("cql tools: " + (", ".join(done) if done else "nothing to fetch"), file=sys.stderr)
