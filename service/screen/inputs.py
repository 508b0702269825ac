"""The export to screen: a directory of ``*.ndjson`` / ``*.ndjson.gz`` files, or a Bulk Data manifest.

FHIR Bulk Data Access (v2.0.0, "Response - Complete Status"): the manifest's ``output[].url`` name one
NDJSON file per resource type (maybe several). Screening runs where the files are, so a manifest entry must
be a local path or a ``file:`` URL (relative paths are taken from the manifest's folder); an ``http(s)`` URL
is refused with a message saying to download the files first - no network access from a screening job.

A manifest is data from elsewhere, not a list of files the user chose: what it names must lie, once
symbolic links and ``..`` are resolved, inside the manifest's folder or a folder the user allowed
(``--allow-dir``), and a ``file:`` URL may name no host but this one (RFC 8089 §2: empty or
``localhost``). Every file is known by its real path, so one file named several ways (a link, ``./``,
a ``file:`` URL) is read, and counted, once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from service.errors import InvalidInput

SUFFIXES = (".ndjson", ".ndjson.gz")
LOCAL_HOSTS = ("", "localhost")


@dataclass(frozen=True)
class InputFile:
    """One NDJSON file; ``index`` is its place in the sorted input list, the same for every engine."""

    index: int
    path: Path  # its real path
    name: str  # as reported (relative to the input directory or manifest)
    size: int

    @property
    def gzipped(self) -> bool:
        return self.path.name.endswith(".gz")


def input_folders(source: Path, allowed: Sequence[Path]) -> list[Path]:
    """The folders the export may be read from, real paths: the directory, or the manifest's folder and
    the allowed ones."""
    if source.is_dir():
        return [source.resolve()]
    return [source.resolve().parent, *(folder.resolve() for folder in allowed)]


def list_inputs(source: Path, allowed: Sequence[Path] = ()) -> list[InputFile]:
    """The files of the export, in a stable order (sorted by name) so line positions mean the same."""
    if source.is_dir():
        base = source
        named = [(p, p) for p in source.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)]
    elif source.is_file():
        named, base = _manifest_files(source, input_folders(source, allowed)), source.parent
    else:
        raise InvalidInput(f"{source}: no such file or directory")
    if not named:
        raise InvalidInput(f"{source}: no *.ndjson or *.ndjson.gz files to screen")
    real: dict[Path, Path] = {}  # real path → the first of its names
    for path, shown in sorted(named, key=lambda item: item[1]):
        real.setdefault(path.resolve(), shown)
    files = []
    for i, (path, shown) in enumerate(sorted(real.items(), key=lambda item: item[1])):
        try:
            name = str(shown.relative_to(base))
        except ValueError:
            name = str(shown)
        files.append(InputFile(i, path, name, path.stat().st_size))
    return files


def _manifest_files(manifest: Path, folders: list[Path]) -> list[tuple[Path, Path]]:
    """(real path, path as reported) of each output of the manifest."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{manifest}: not a readable Bulk Data manifest ({exc})") from exc
    outputs = data.get("output") if isinstance(data, dict) else None
    if not isinstance(outputs, list):
        raise InvalidInput(f"{manifest}: a Bulk Data manifest needs an 'output' array")
    base = manifest.resolve().parent
    paths: list[tuple[Path, Path]] = []
    for i, item in enumerate(outputs):
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url:
            raise InvalidInput(f"{manifest}: output[{i}] has no 'url'")
        where = f"{manifest}: output[{i}] ({url[:80]})"
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            raise InvalidInput(
                f"{where} is a remote URL: download the export first "
                "and give a manifest with local paths, or the directory"
            )
        if parsed.scheme == "file":
            if parsed.netloc.lower() not in LOCAL_HOSTS:
                raise InvalidInput(f"{where} names another host: only local files are read")
            path = Path(unquote(parsed.path))
        elif parsed.scheme and len(parsed.scheme) > 1:  # "C:" would be a drive, not a scheme
            raise InvalidInput(f"{where}: only local paths and file: URLs are read")
        else:
            path = Path(url)
        shown = path if path.is_absolute() else manifest.parent / path
        real = Path(os.path.realpath(base / path))
        if not any(real.is_relative_to(folder) for folder in folders):
            raise InvalidInput(
                f"{where} lies outside the manifest's folder {base}: "
                "move it there, or allow its folder with --allow-dir"
            )
        if not real.is_file():
            raise InvalidInput(f"{where}: {shown} is not a file")
        paths.append((real, shown))
    return paths
