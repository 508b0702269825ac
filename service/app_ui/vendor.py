"""The clinician app's third-party browser code: pinned npm packages, fetched at build time.

A hospital network may have no route to a CDN, and the app runs under a CSP that allows scripts from this
service only, so each file the browser needs is copied into the package before the wheel is built
(``make vendor``; the Dockerfile runs the same). ``vendor.json`` pins each package by version and by the
registry's sha512 ``integrity`` (the Subresource Integrity form npm publishes); a tarball that does not
match is refused. The tarball comes straight from the registry over HTTPS, so building needs no Node.js.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from service.packaged import UI_STATIC

REGISTRY = "https://registry.npmjs.org"
PINS = Path(__file__).with_name("vendor.json")
TARGET = UI_STATIC / "vendor"


def pins() -> dict[str, dict[str, Any]]:
    raw: dict[str, Any] = json.loads(PINS.read_text(encoding="utf-8"))
    return {name: spec for name, spec in raw.items() if not name.startswith("_")}


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def tarball(name: str, version: str, integrity: str, registry: str = REGISTRY) -> bytes:
    """The package's tarball as the registry serves it, refused unless its sha512 matches the pin."""
    url = f"{registry}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=120) as response:
        data: bytes = response.read()
    found = integrity_of(data)
    if found != integrity:
        raise RuntimeError(f"{name}@{version}: integrity {found} is not the pinned {integrity}")
    return data


def unpack(data: bytes, members: dict[str, str], target: Path) -> None:
    """Copy the named members of a tarball to ``target`` under their new names (nothing else is kept)."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member, name in members.items():
            extracted = archive.extractfile(member)
            if extracted is None:
                raise RuntimeError(f"{member} is not a file in the tarball")
            partial = target / f".{name}.partial"
            partial.write_bytes(extracted.read())
            partial.rename(target / name)  # whole, or not at all


def missing(target: Path = TARGET) -> list[str]:
    """The vendored files not present (empty after a good build)."""
    return [
        name for spec in pins().values() for name in spec["files"].values() if not (target / name).is_file()
    ]


def vendor(target: Path = TARGET) -> list[str]:
    """Fetch every pinned package whose files are missing; the names of the packages fetched."""
    fetched = []
    for name, spec in pins().items():
        if any(not (target / f).is_file() for f in spec["files"].values()):
            unpack(tarball(name, spec["version"], spec["integrity"]), spec["files"], target)
            fetched.append(f"{name}@{spec['version']}")
    return fetched


if __name__ == "__main__":
    done = vendor()
    print("vendored: " + (", ".join(done) if done else "nothing to fetch"), file=sys.stderr)
