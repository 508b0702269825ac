"""The documentation site builds with the Makefile's own command, and that command fails on a broken link or
anchor (strict mode); the README stays a short front page whose first commands are the ones CI runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from markdown.extensions.toc import slugify

from tests.docs.pages import DOCS, README, blocks
from tests.live import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")


def docs_command() -> str:
    """The recipe of ``make docs``, with the venv's bin folder for ``$(BIN)``."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^docs: .*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "the Makefile has no docs target"
    return recipe.group(1).strip().replace("$(BIN)", str(Path(sys.executable).parent))


def build(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", docs_command()], cwd=folder, capture_output=True, text=True, timeout=120, check=False
    )


def copy_of_the_docs(folder: Path) -> Path:
    """mkdocs.yml and docs/ (linked pages copied as files), away from the checkout's site/."""
    shutil.copy(ROOT / "mkdocs.yml", folder / "mkdocs.yml")
    shutil.copytree(DOCS, folder / "docs", symlinks=False)
    return folder


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    done = build(copy_of_the_docs(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr
    assert (tmp_path / "site" / "integration" / "cds-hooks.html").is_file()
    assert (tmp_path / "site" / "app-1-preliminary.png").is_file()


def test_a_broken_link_or_anchor_fails_the_build(tmp_path: Path) -> None:
    folder = copy_of_the_docs(tmp_path)
    page = folder / "docs" / "clinician.md"
    page.write_text(
        page.read_text(encoding="utf-8") + "\n[gone](no-such-page.md) [nowhere](rules.md#no-such-heading)\n",
        encoding="utf-8",
    )
    done = build(folder)
    assert done.returncode != 0
    assert "'no-such-page.md'" in done.stderr and "'rules.md#no-such-heading'" in done.stderr


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    first = blocks(README)[0]
    assert first.lang == "sh" and text.index(first.text) < text.index("\n## ")
    commands = [line.split("#")[0].strip() for line in first.text.splitlines()]
    assert commands == ["make run", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    test_command = blocks(README)[0].text.splitlines()[1].split("#")[0].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    steps = [line for line in ci if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert steps == [test_command]


def test_the_readme_links_lead_somewhere() -> None:
    """The README is read on a code host, outside the site's strict build: its files and anchors exist."""
    for target in LINK.findall(README.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        assert (ROOT / path).exists(), f"README links to {path}, which is not there"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", (ROOT / path).read_text(encoding="utf-8"), re.M)
            slugs = {slugify(heading.replace("`", ""), "-") for heading in headings}
            assert anchor in slugs, f"README links to {target}: no such heading"
