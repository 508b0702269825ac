"""A Bulk Data manifest names files in its own folder (or one the user allows), each read once.

Observed before: ``file:///etc/passwd``, ``../../etc/hostname`` and ``file://otherhost/...`` (the host
ignored) were all read, and one file named three ways was read, and counted, three times.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from benchmarks.bulk_export import Export, write_export
from tests.screen.support import AS_OF, results, screen


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return write_export(tmp_path_factory.mktemp("export"), 60, seed=13)


def manifest(folder: Path, urls: list[str]) -> Path:
    path = folder / "manifest.json"
    path.write_text(json.dumps({"output": [{"type": "Observation", "url": url} for url in urls]}))
    return path


def outputs(export: Export) -> list[str]:
    return [item["url"] for item in json.loads(export.manifest.read_text())["output"]]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", ["outside the manifest's folder", "--allow-dir"]),
        ("RELATIVE:/etc/hostname", ["outside the manifest's folder"]),  # ../../../etc/hostname
        ("file://otherhost/EXPORT/Patient.000.ndjson", ["names another host"]),  # a file that is there
        ("OUTSIDE", ["outside the manifest's folder"]),  # an NDJSON file beside the export's folder
    ],
)
def test_a_manifest_naming_a_file_outside_its_folder_is_refused(
    export: Export, tmp_path: Path, url: str, words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for name in outputs(export):
        shutil.copy(export.folder / name, folder / name)
    outside = tmp_path / "elsewhere" / "Observation.ndjson"
    outside.parent.mkdir()
    outside.write_bytes((export.folder / "Observation.000.ndjson").read_bytes())
    url = url.replace("RELATIVE:", os.path.relpath("/", folder)).replace("EXPORT", str(export.folder)[1:])
    url = url.replace("OUTSIDE", os.path.relpath(outside, folder))
    out = tmp_path / "out"
    assert screen(manifest(folder, [*outputs(export), url]), out, "--as-of", AS_OF, "--workers", "1") == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "output[" in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    assert not (out / "results.ndjson").exists()


def test_allow_dir_lets_a_manifest_name_files_in_another_folder(export: Export, tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    urls = [(export.folder / name).as_uri() for name in outputs(export)]
    path = manifest(folder, urls)
    assert screen(path, tmp_path / "refused", "--as-of", AS_OF, "--workers", "1") == 2
    out = tmp_path / "out"
    allowed = ["--allow-dir", str(export.folder)]
    assert screen(path, out, "--as-of", AS_OF, "--workers", "1", *allowed) == 0
    whole = tmp_path / "whole"
    assert screen(export.folder, whole, "--as-of", AS_OF, "--workers", "1") == 0
    assert results(out) == results(whole)


def test_one_file_named_several_ways_is_read_once(export: Export, tmp_path: Path) -> None:
    once = tmp_path / "once"
    assert screen(export.manifest, once, "--as-of", AS_OF, "--workers", "1") == 0
    (export.folder / "linked.ndjson").symlink_to(export.folder / "Observation.000.ndjson")
    try:
        urls = [
            *outputs(export),
            "./Observation.000.ndjson",
            (export.folder / "Observation.000.ndjson").as_uri(),  # file:///...
            "file://localhost" + str(export.folder / "Observation.000.ndjson"),
            "linked.ndjson",
            "../" + export.folder.name + "/Observation.000.ndjson",
        ]
        path = export.folder / "named-often.json"
        path.write_text(json.dumps({"output": [{"type": "Observation", "url": url} for url in urls]}))
        out = tmp_path / "out"
        assert screen(path, out, "--as-of", AS_OF, "--workers", "1") == 0
    finally:
        (export.folder / "linked.ndjson").unlink()
    counted = json.loads((out / "summary.json").read_text())["input"]
    expected = json.loads((once / "summary.json").read_text())["input"]
    assert counted["resources"] == expected["resources"] and counted["files"] == expected["files"]
    assert results(out) == results(once)
