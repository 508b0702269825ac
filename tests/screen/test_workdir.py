"""The work folder is verified, not trusted: what a ledger names is checked before it is used again.

Observed before: cutting a spill piece in half and resuming gave exit 0 with 165 patients fewer and the
same input counts; cutting a finished partition's results gave a summary that disagreed with
results.ndjson; a corrupted run.json or a missing tally.json ended in a traceback; spill pieces and
partition outputs were not fsync'd, though the ledgers naming them were.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks.bulk_export import Export, write_export
from service.screen import command
from service.screen.job import Job, evaluation_time
from service.screen.local import run_local
from tests.screen.support import AS_OF, results, screen

PARTITIONS = "16"
SETTINGS = ("--as-of", AS_OF, "--workers", "1", "--partitions", PARTITIONS, "--progress-every", "60")


class StopAfter:
    """A progress display that presses Ctrl-C once ``parts`` partitions are assessed, and may do
    something to the work folder when assessing begins."""

    def __init__(self, parts: int = 1000, at_assessing: Any = None):
        self.parts, self.at_assessing, self.phase_name = parts, at_assessing, ""

    def phase(self, name: str, total: int, unit: str) -> None:
        self.phase_name = name
        if name == "assessing" and self.at_assessing is not None:
            self.at_assessing()

    def advance(self, done: int, patients: int = 0) -> None:
        if self.phase_name == "assessing" and patients:
            self.parts -= 1
            if self.parts <= 0:
                raise KeyboardInterrupt

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return write_export(tmp_path_factory.mktemp("export"), 600, seed=15)


@pytest.fixture(scope="module")
def whole(export: Export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "out"
    assert screen(export.folder, out, *SETTINGS) == 0
    return out


@pytest.fixture(scope="module")
def stopped(export: Export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUTDIR of a run stopped by Ctrl-C after 4 of 16 partitions: every chunk spilled, 12 to assess."""
    out = tmp_path_factory.mktemp("stopped") / "out"
    job = Job(export.folder, out, evaluation_time(AS_OF), 1, int(PARTITIONS), 100_000)
    with pytest.raises(KeyboardInterrupt):
        run_local(job, StopAfter(parts=4))
    return out


@pytest.fixture
def out(stopped: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(stopped, copy, symlinks=True)
    return copy


def done_parts(out: Path) -> list[Path]:
    return sorted(p for p in (out / ".work" / "parts").iterdir() if "." not in p.name)


def pieces_to_assess(out: Path) -> list[Path]:
    """Spill pieces of partitions not assessed yet, the largest first."""
    done = {p.name for p in done_parts(out)}
    pieces = [p for p in (out / ".work" / "spill").rglob("*.tsv")]
    waiting = [p for p in pieces if not ({p.stem, p.parent.name} & done)]  # pNNNN.tsv (or pNNNN/ before)
    return sorted(waiting, key=lambda p: -p.stat().st_size)


def cut_in_half(path: Path) -> None:
    """The first half of its lines, whole: nothing that fails to parse, only less of it."""
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) > 1, path
    path.write_bytes(b"".join(lines[: len(lines) // 2]))


def same_as_whole(out: Path, whole: Path) -> None:
    assert results(out) == results(whole)
    summary, expected = (json.loads((d / "summary.json").read_text()) for d in (out, whole))
    for key in ("input", "patients", "byRisk", "byStatus", "escalationWithoutServiceRequest", "measure"):
        assert summary[key] == expected[key], key
    reports = Path("fhir") / "MeasureReport.ndjson"  # gathered again on resume: one summary report
    assert (out / reports).read_bytes() == (whole / reports).read_bytes()


def test_the_stopped_run_is_what_the_tests_need(stopped: Path) -> None:
    assert len(done_parts(stopped)) == 4 and pieces_to_assess(stopped)


def test_a_spill_piece_cut_in_half_is_read_again_from_the_input(
    export: Export, out: Path, whole: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    piece = pieces_to_assess(out)[0]
    cut_in_half(piece)
    assert screen(export.folder, out, *SETTINGS) == 0
    same_as_whole(out, whole)
    err = capsys.readouterr().err
    assert f"{piece} is damaged" in err and "read again from the input" in err, err


def test_a_finished_partitions_results_cut_in_half_are_assessed_again(
    export: Export, out: Path, whole: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    part = done_parts(out)[0]
    cut_in_half(part / "results.ndjson")
    assert screen(export.folder, out, *SETTINGS) == 0
    same_as_whole(out, whole)
    err = capsys.readouterr().err
    assert f"{part / 'results.ndjson'} is damaged" in err and "assessed again" in err, err


@pytest.mark.parametrize("damage", ["missing", "not JSON", "not a ledger"])
def test_a_damaged_tally_json_is_said_in_one_line_and_the_partition_assessed_again(
    export: Export, out: Path, whole: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = done_parts(out)[1] / "tally.json"
    if damage == "missing":
        tally.unlink()
    else:
        tally.write_text("{" if damage == "not JSON" else "[1, 2]")
    assert screen(export.folder, out, *SETTINGS) == 0
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if "tally.json" in line]
    assert line.startswith(f"neckcheck: {tally} is damaged") and "Traceback" not in err
    same_as_whole(out, whole)


@pytest.mark.parametrize("damage", ["missing", "not JSON", "no clock"])
def test_a_damaged_run_json_stops_with_one_line_and_force_starts_again(
    export: Export, out: Path, whole: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = out / ".work" / "run.json"
    if damage == "missing":
        settings.unlink()
    elif damage == "not JSON":
        settings.write_bytes(settings.read_bytes()[:40])
    else:
        settings.write_text(json.dumps({"inputs": [], "partitions": 16}))
    assert screen(export.folder, out, *SETTINGS) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"neckcheck: {settings} is damaged") and "--force" in err
    assert screen(export.folder, out, *SETTINGS, "--force") == 0
    same_as_whole(out, whole)


def test_a_piece_damaged_during_the_run_stops_it_naming_the_piece_and_the_next_run_redoes_it(
    export: Export,
    tmp_path: Path,
    whole: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    cut: list[Path] = []

    def damage() -> None:  # between reading the export and assessing it
        cut.append(max((out / ".work" / "spill").rglob("*.tsv"), key=lambda p: p.stat().st_size))
        cut_in_half(cut[0])

    monkeypatch.setattr(command, "make_progress", lambda stream, every: StopAfter(at_assessing=damage))
    assert screen(export.folder, out, *SETTINGS) == 3
    err = capsys.readouterr().err
    assert f"neckcheck: {cut[0]} is damaged" in err and "run the same command again" in err, err
    assert not (out / "summary.json").exists()
    monkeypatch.undo()
    assert screen(export.folder, out, *SETTINGS) == 0
    same_as_whole(out, whole)


def test_a_ledger_that_disagrees_with_the_outputs_it_names_stops_the_run(
    export: Export, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A partition's counts changed, its files not: every file matches its checksum, so only the
    recount of the outputs catches it, and the run does not report success."""
    tally = done_parts(out)[0] / "tally.json"
    data = json.loads(tally.read_text())
    counts = data.get("tally", data)
    counts["patients"]["with a result"] += 1
    counts["risk"]["high"] = counts["risk"].get("high", 0) + 1
    tally.write_text(json.dumps(data))
    assert screen(export.folder, out, *SETTINGS) == 3
    err = capsys.readouterr().err
    assert "patients.withResult is" in err and "results.ndjson has" in err and "byRisk" in err, err
    assert not (out / "summary.json").exists()


def test_a_ledger_whose_measure_counts_disagree_with_the_outputs_stops_the_run(
    export: Export, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One more patient with every escalation order already requested: summary.json and its summary
    MeasureReport would agree with each other, but not with escalation-without-referral.ndjson."""
    for part in done_parts(out):
        tally = part / "tally.json"
        data = json.loads(tally.read_text())
        patients = data["tally"]["patients"]
        if patients.get("escalation due", 0) > patients.get("escalation ordered", 0):
            patients["escalation ordered"] = patients.get("escalation ordered", 0) + 1
            tally.write_text(json.dumps(data))
            break
    else:
        pytest.fail("no finished partition has an escalation not yet ordered")
    assert screen(export.folder, out, *SETTINGS) == 3
    err = capsys.readouterr().err
    assert "measure.denominator - numerator is" in err and "escalation-without-referral.ndjson has" in err
    assert not (out / "summary.json").exists()


def test_every_file_a_ledger_names_is_fsynced_with_its_folder_before_the_ledger(
    export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "out"
    job = Job(export.folder, out, evaluation_time(AS_OF), 1, 4, 100_000)
    with pytest.raises(KeyboardInterrupt):  # stopped before the work folder is gathered and removed
        run_local(job, StopAfter(parts=4))
    work = (out / ".work").resolve()
    spilled = sorted((work / "spilled").glob("*.json"))
    assert spilled
    for ledger in spilled:
        named = json.loads(ledger.read_text())
        chunk = work / "spill" / ledger.stem
        files = [chunk / f"p{int(p):04d}.tsv" for p in named["pieces"]] + [chunk / "problems.ndjson"]
        before = synced[: synced.index(str(ledger) + ".tmp")]
        for path in [*files, chunk]:
            assert str(path) in before, path
    for part in sorted((work / "parts").iterdir()):
        tmp = part.with_name(part.name + ".tmp")
        written = synced.index(str(tmp / "tally.json.tmp"))
        for name in json.loads((part / "tally.json").read_text())["files"]:
            assert str(tmp / name) in synced[:written], name
        assert str(tmp) in synced[:written] and str(tmp / "fhir") in synced[:written]
        assert str(work / "parts") in synced[written:]  # the rename into place
