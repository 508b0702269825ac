"""The clinician app's browser library: in the repository as pinned, and fetched again only from the npm
registry the machine is set up for."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service import npm
from service.app_ui import vendor
from service.npm import DEFAULT, registry

ROOT = Path(__file__).resolve().parents[2]


def package(files: dict[str, bytes]) -> bytes:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text))
    return packed.getvalue()


def test_the_default_is_the_public_registry(tmp_path: Path) -> None:
    assert registry({"HOME": str(tmp_path)}, tmp_path) == registry({}, tmp_path / "nowhere")
    assert registry({"HOME": str(tmp_path)}, tmp_path).url == DEFAULT


@pytest.mark.parametrize(
    ("environment", "project", "user", "expected"),
    [
        ({"npm_config_registry": "https://env.example/npm/"}, "registry=https://project.example/", "", "env"),
        ({"NPM_CONFIG_REGISTRY": "https://env.example/npm"}, "", "", "env"),
        ({}, "registry = https://project.example/", "registry=https://user.example/", "project"),
        ({}, "; a comment\n# another", "registry=https://user.example/", "user"),
        ({"MIRROR": "https://user.example"}, "", 'registry="${MIRROR}/"', "user"),
    ],
)
def test_npm_settings_are_read_in_npms_order(
    tmp_path: Path, environment: dict[str, str], project: str, user: str, expected: str
) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".npmrc").write_text(user)
    (tmp_path / ".npmrc").write_text(project)
    found = registry({"HOME": str(tmp_path / "home"), **environment}, tmp_path)
    assert (
        found.url
        == {
            "env": "https://env.example/npm",
            "project": "https://project.example",
            "user": "https://user.example",
        }[expected]
    )


def test_a_mirror_from_npmrc_is_fetched_from_with_its_token(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hospital's build machine: its .npmrc names an internal mirror that wants a token; nothing is
    fetched from anywhere else, and the pinned integrity is checked all the same."""
    data = package({"package/dist/lib.js": b"// lib"})
    seen: list[str | None] = []

    def mirror(request: Request) -> Response:
        seen.append(request.headers.get("Authorization"))
        return Response(data)

    httpserver.expect_request("/npm/some-lib/-/some-lib-1.0.0.tgz").respond_with_handler(mirror)
    base = httpserver.url_for("/npm/")
    host_path = base.split("://", 1)[1]
    (tmp_path / ".npmrc").write_text(f"registry={base}\n//{host_path}:_authToken=${{MIRROR_TOKEN}}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MIRROR_TOKEN", "s3cret")
    for name in [n for n in os.environ if n.lower().startswith("npm_config_")]:
        monkeypatch.delenv(name)
    assert npm.tarball("some-lib", "1.0.0", npm.integrity_of(data)) == data
    assert seen == ["Bearer s3cret"]
    with pytest.raises(RuntimeError, match="is not the pinned"):
        npm.tarball("some-lib", "1.0.0", "sha512-" + "A" * 88)


def test_a_changed_file_is_named(tmp_path: Path) -> None:
    pins = tmp_path / "vendor.json"
    pins.write_text(vendor.PINS.read_text())
    for name in json.loads(pins.read_text())["fhirclient"]["files"].values():
        (tmp_path / name).write_bytes((vendor.TARGET / name).read_bytes())
    assert vendor.check(tmp_path, pins) == []
    (tmp_path / "fhir-client.js").write_bytes(b"alert('not the library')")
    (tmp_path / "fhir-client.LICENSE.txt").unlink()
    assert vendor.check(tmp_path, pins) == [
        f"{tmp_path / 'fhir-client.js'} is not the file pinned in vendor.json",
        f"{tmp_path / 'fhir-client.LICENSE.txt'} is missing",
    ]


def test_the_files_in_the_repository_are_the_ones_the_registry_publishes(tmp_path: Path) -> None:
    """`make vendor` from the npm registry gives, byte for byte, what is committed and what its pins say."""
    pins = tmp_path / "vendor.json"
    pins.write_text(vendor.PINS.read_text())
    assert vendor.fetch(tmp_path / "fetched", pins) == ["fhirclient@2.6.3"]
    assert pins.read_text() == vendor.PINS.read_text()
    for name in json.loads(pins.read_text())["fhirclient"]["files"].values():
        assert (tmp_path / "fetched" / name).read_bytes() == (vendor.TARGET / name).read_bytes()


def test_git_keeps_the_library_and_ignores_sqlites_side_files() -> None:
    """After `make run`, `git status` is clean: the SQLite database's -wal and -shm files are ignored; the
    vendored library is not (a clone must hold it)."""
    paths = [
        "neckcheck.db",
        "neckcheck.db-wal",
        "neckcheck.db-shm",
        "service/app_ui/static/vendor/fhir-client.js",
    ]
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--verbose", "--non-matching", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    ignored = {line.split("\t")[1]: bool(line.split("\t")[0].strip(":")) for line in done.stdout.splitlines()}
    assert ignored == {**dict.fromkeys(paths[:3], True), paths[3]: False}
