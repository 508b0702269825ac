"""The clinician app's third-party browser code: pinned npm packages, kept in the repository.

A hospital network may have no route to a CDN, and the app runs under a CSP that allows scripts from this
service only, so each file the browser needs ships inside the package. The files are committed
(``static/vendor/``), each with its sha512 in ``vendor.json`` (``fileIntegrity``): a wheel built from a
clone (``pip wheel .``) is whole, and a hospital's build machine builds it offline, with nothing fetched
and nothing to trust at build time but the repository. ``python -m service.app_ui.vendor`` checks the
files against their pins (the Dockerfile runs it).

``--fetch`` (``make vendor``) is how a pin moves: it fetches each package's tarball from the npm registry
the machine is set up for (service/npm.py), refuses it unless it matches the registry's
sha512 ``integrity`` pinned in ``vendor.json`` (the Subresource Integrity form npm publishes), copies the
files out and records their sha512. No Node.js is needed.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

from service.npm import Registry, integrity_of, tarball
from service.packaged import UI_STATIC

PINS = Path(__file__).with_name("vendor.json")
TARGET = UI_STATIC / "vendor"


def pins(path: Path = PINS) -> dict[str, dict[str, Any]]:
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return {name: spec for name, spec in raw.items() if not name.startswith("_")}


def unpack(data: bytes, members: dict[str, str], target: Path) -> dict[str, str]:
    """Copy the named members of a tarball to ``target`` under their new names (nothing else is kept);
    the sha512 of each file written, by its new name."""
    target.mkdir(parents=True, exist_ok=True)
    written = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member, name in members.items():
            extracted = archive.extractfile(member)
            if extracted is None:
                raise RuntimeError(f"{member} is not a file in the tarball")
            content = extracted.read()
            partial = target / f".{name}.partial"
            partial.write_bytes(content)
            partial.rename(target / name)  # whole, or not at all
            written[name] = integrity_of(content)
    return written


def missing(target: Path = TARGET) -> list[str]:
    """The vendored files not present (empty in a whole build)."""
    return [
        name for spec in pins().values() for name in spec["files"].values() if not (target / name).is_file()
    ]


def check(target: Path = TARGET, path: Path = PINS) -> list[str]:
    """What is wrong with the vendored files: each one missing, or not the bytes its pin records."""
    problems = []
    for spec in pins(path).values():
        for name in spec["files"].values():
            file = target / name
            if not file.is_file():
                problems.append(f"{file} is missing")
            elif integrity_of(file.read_bytes()) != spec["fileIntegrity"].get(name):
                problems.append(f"{file} is not the file pinned in {path.name}")
    return problems


def fetch(target: Path = TARGET, path: Path = PINS, source: Registry | None = None) -> list[str]:
    """Fetch every pinned package again, write its files and record their sha512 in ``path``; the
    packages fetched."""
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    fetched = []
    for name, spec in pins(path).items():
        data = tarball(name, spec["version"], spec["integrity"], source)
        raw[name]["fileIntegrity"] = unpack(data, spec["files"], target)
        fetched.append(f"{name}@{spec['version']}")
    path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return fetched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.app_ui.vendor", description=__doc__)
    parser.add_argument(
        "--fetch", action="store_true", help="fetch the pinned packages from the npm registry and record them"
    )
    if parser.parse_args(argv).fetch:
        print("vendored: " + ", ".join(fetch()), file=sys.stderr)
        return 0
    problems = check()
    for problem in problems:
        print(f"vendor: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
