"""The export to screen: a directory of ``*.ndjson`` / ``*.ndjson.gz`` files, or a Bulk Data manifest.

FHIR Bulk Data Access (v2.0.0, "Response - Complete Status"): the manifest's ``output[].url`` name one
NDJSON file per resource type (maybe several). Screening runs where the files are, so a manifest entry must
be a local path or a ``file:`` URL (relative paths are taken from the manifest's folder); an ``http(s)`` URL
is refused with a message saying to download the files first - no network access from a screening job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from service.errors import InvalidInput

SUFFIXES = (".ndjson", ".ndjson.gz")


@dataclass(frozen=True)
class InputFile:
    """One NDJSON file; ``index`` is its place in the sorted input list, the same for every engine."""

    index: int
    path: Path
    name: str  # as reported (relative to the input directory or manifest)
    size: int

    @property
    def gzipped(self) -> bool:
        return self.path.name.endswith(".gz")


def list_inputs(source: Path) -> list[InputFile]:
    """The files of the export, in a stable order (sorted by name) so line positions mean the same."""
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
        base = source
    elif source.is_file():
        paths, base = _manifest_files(source), source.parent
    else:
        raise InvalidInput(f"{source}: no such file or directory")
    if not paths:
        raise InvalidInput(f"{source}: no *.ndjson or *.ndjson.gz files to screen")
    files = []
    for i, path in enumerate(paths):
        try:
            name = str(path.relative_to(base))
        except ValueError:
            name = str(path)
        files.append(InputFile(i, path, name, path.stat().st_size))
    return files


def _manifest_files(manifest: Path) -> list[Path]:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{manifest}: not a readable Bulk Data manifest ({exc})") from exc
    outputs = data.get("output") if isinstance(data, dict) else None
    if not isinstance(outputs, list):
        raise InvalidInput(f"{manifest}: a Bulk Data manifest needs an 'output' array")
    paths: list[Path] = []
    for i, item in enumerate(outputs):
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url:
            raise InvalidInput(f"{manifest}: output[{i}] has no 'url'")
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            raise InvalidInput(
                f"{manifest}: output[{i}] is a remote URL ({url[:80]}): download the export first "
                "and give a manifest with local paths, or the directory"
            )
        path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(url)
        path = path if path.is_absolute() else manifest.parent / path
        if not path.is_file():
            raise InvalidInput(f"{manifest}: output[{i}]: {path} is not a file")
        paths.append(path)
    return sorted(set(paths))
