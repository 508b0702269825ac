"""Where a run reads and writes: OUTDIR apart from the export, a finished OUTDIR kept without --force.

Observed before: ``neckcheck screen DIR --out DIR/screen`` run twice read the first run's proposed orders
(``fhir/ServiceRequest.ndjson``) as referrals already made and reported 0 patients with escalation due
instead of 145, exit 0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks.bulk_export import Export, write_export
from tests.screen.support import AS_OF, screen

OUTPUTS = ("results.ndjson", "fhir", "summary.json", "summary.png", "not-assessed.ndjson")
OUTPUTS += ("escalation-without-referral.ndjson", "input-problems.ndjson")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return write_export(tmp_path_factory.mktemp("export"), 120, seed=12)


def refused(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    """One line on stderr, saying why; no traceback."""
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("neckcheck: ") and "Traceback" not in err
    for word in words:
        assert word in err, err


def test_outdir_inside_the_export_is_refused_before_anything_is_read(
    export: Export, capsys: pytest.CaptureFixture[str]
) -> None:
    out = export.folder / "screen"  # the observed command: DIR --out DIR/screen
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "1") == 2
    refused(capsys, "inside the export", "outside the export")
    assert not out.exists()
    assert screen(export.folder, export.folder, "--as-of", AS_OF) == 2  # OUTDIR is INPUT
    refused(capsys, "inside the export")


def test_outdir_named_through_a_link_into_the_export_is_refused(
    export: Export, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "looks-elsewhere"
    link.symlink_to(export.folder)
    assert screen(export.folder, link / "screen", "--as-of", AS_OF, "--workers", "1") == 2
    refused(capsys, "inside the export")
    assert not (export.folder / "screen").exists()


def test_the_export_inside_outdir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    inner = write_export(out / "export", 20, seed=1)
    assert screen(inner.folder, out, "--as-of", AS_OF, "--workers", "1") == 2
    refused(capsys, "lies inside --out")
    assert screen(inner.manifest, out, "--as-of", AS_OF, "--workers", "1") == 2  # the manifest too
    refused(capsys, "lies inside --out")
    assert not (out / "results.ndjson").exists()


def test_an_input_file_linked_from_outdir_is_refused(
    export: Export, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first run's proposed orders brought back into the export by a link: not read."""
    out = tmp_path / "out"
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "1") == 0
    folder = tmp_path / "export"
    folder.mkdir()
    for path in export.folder.glob("*.ndjson"):
        (folder / path.name).symlink_to(path)
    (folder / "ServiceRequest.proposed.ndjson").symlink_to(out / "fhir" / "ServiceRequest.ndjson")
    capsys.readouterr()
    assert screen(folder, out, "--as-of", AS_OF, "--workers", "1", "--force") == 2
    refused(capsys, "ServiceRequest.proposed.ndjson", "inside --out")


def test_neckcheck_s_own_work_folder_under_outdir_is_not_the_user_s_export(tmp_path: Path) -> None:
    """Where a downloaded export would go: OUTDIR/.export."""
    out = tmp_path / "out"
    own = write_export(out / ".export", 30, seed=2)
    assert screen(own.folder, out, "--as-of", AS_OF, "--workers", "1") == 0
    assert json.loads((out / "summary.json").read_text())["patients"]["withResult"] > 0


def test_a_finished_outdir_is_kept_unless_force(
    export: Export, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "1") == 0
    kept = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    # the same command again, or another evaluation time: the finished run is not overwritten
    assert screen(export.folder, out, "--as-of", "2026-01-01T00:00:00Z", "--workers", "1") == 2
    refused(capsys, "outputs of an earlier run", "--force")
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()} == kept
    (out / "mine.txt").write_text("a note of the user's")
    assert screen(export.folder, out, "--as-of", "2026-01-01T00:00:00Z", "--workers", "1", "--force") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluationTime"] == {"asOf": "2026-01-01T00:00:00Z"}
    assert (out / "mine.txt").read_text() == "a note of the user's"  # --force clears only a run's files
    assert set(os.listdir(out)) == {*OUTPUTS, "mine.txt"}
