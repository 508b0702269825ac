"""Lines, gzip files and patients within limits: reported by file and line and skipped, memory bounded.

Observed before: a 9.4 MB gzip file holding 2 GB of zeros on one line took 4.47 GB of memory; 200 MB of
newlines in a 0.9 MB gzip file took 11 min 44 s. The tests use smaller limits and proportionally
smaller inputs.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.bulk_export import Export, write_export
from service.screen import partitions
from tests.screen.support import AS_OF, finding, read_ndjson, results, screen

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return write_export(tmp_path_factory.mktemp("export"), 150, seed=14, file_lines=600)


def copy(export: Export, folder: Path, gz: bool = False) -> Path:
    folder.mkdir()
    for path in export.folder.glob("*.ndjson"):
        data = path.read_bytes()
        if gz:
            (folder / (path.name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / path.name).write_bytes(data)
    return folder


def overlong_resource(size: int) -> bytes:
    """A valid Observation of a patient of the export, made longer than the limit by a note."""
    return json.dumps({**finding("Patient/gen-14-0", "long"), "note": [{"text": "x" * size}]}).encode()


@pytest.mark.parametrize("gz", [False, True], ids=["ndjson", "ndjson.gz"])
def test_a_line_over_the_limit_is_reported_by_file_and_line_and_skipped(
    export: Export, tmp_path: Path, gz: bool
) -> None:
    clean = copy(export, tmp_path / "clean")
    folder = tmp_path / "export"
    folder.mkdir()
    for path in clean.iterdir():
        lines = path.read_bytes().splitlines(keepends=True)
        if path.name == "Observation.000.ndjson":  # line 3: 1 MB of zeros; line 6: a valid, long resource
            lines[2:2] = [b"0" * (1 << 20) + b"\n"]
            lines[5:5] = [overlong_resource(300_000) + b"\n"]
            lines.append(b"0" * 200_000)  # the last line, with no newline after it
        data = b"".join(lines)
        name = path.name + (".gz" if gz else "")
        (folder / name).write_bytes(gzip.compress(data) if gz else data)
    out = tmp_path / "out"
    assert screen(folder, out, "--as-of", AS_OF, "--workers", "2", "--max-line-bytes", "64K") == 0
    suffix = ".gz" if gz else ""
    file = f"Observation.000.ndjson{suffix}"
    last = len((clean / "Observation.000.ndjson").read_bytes().splitlines()) + 3
    problems = read_ndjson(out / "input-problems.ndjson")
    assert [(p["file"], p["line"], p["kind"]) for p in problems] == [
        (file, 3, "too-long"),
        (file, 6, "too-long"),
        (file, last, "too-long"),
    ]
    assert "1,048,576 bytes, longer than 65,536 (--max-line-bytes)" in problems[0]["problem"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["lines"]["too-long"] == 3
    assert summary["input"]["tooLongByFile"] == {file: 3}
    # everything else is screened as if those lines were not there
    assert screen(clean, tmp_path / "clean-out", "--as-of", AS_OF, "--workers", "1") == 0
    assert results(out) == results(tmp_path / "clean-out")


def peak_rss_kb(folder: Path, out: Path, *args: str) -> int:
    """The largest resident set of the screen command's processes, in kB (getrusage of the children of a
    fresh interpreter, so nothing else this test process ran counts)."""
    command = [sys.executable, "-m", "service.cli", "screen", str(folder), "--out", str(out), *args]
    probe = textwrap.dedent(
        f"""
        import resource, subprocess, sys
        done = subprocess.run({command!r}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    return int(done.stdout.split()[-1])


def test_memory_is_bounded_by_the_line_limit_not_by_the_line(export: Export, tmp_path: Path) -> None:
    """256 MB of zeros on one line of a 250 kB gzip file, with the default limit (16 MiB): the process
    grows by about the limit at most over the same command on a small export (it held the whole line,
    twice, before)."""
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    with gzip.open(bomb / "Observation.ndjson.gz", "wb") as stream:
        for _ in range(256):
            stream.write(b"0" * (1 << 20))
        stream.write(b"\n")
    args = ("--as-of", AS_OF, "--workers", "1", "--progress-every", "60")
    small = peak_rss_kb(export.folder, tmp_path / "small", *args)
    peak = peak_rss_kb(bomb, tmp_path / "out", *args)
    assert peak < small + 48 * 1024, (peak, small)
    (problem,) = read_ndjson(tmp_path / "out" / "input-problems.ndjson")
    assert problem["kind"] == "too-long" and problem["line"] == 1
    assert problem["problem"].startswith("line of 268,435,456 bytes")


def test_a_file_of_newlines_costs_what_decompressing_it_costs(tmp_path: Path) -> None:
    """50 million empty lines (50 MB in a 50 kB gzip file): counted a block at a time, within a minute
    (a Python step per line took three)."""
    folder = tmp_path / "blank"
    folder.mkdir()
    with gzip.open(folder / "Observation.ndjson.gz", "wb") as stream:
        for _ in range(50):
            stream.write(b"\n" * 1_000_000)
    command = [sys.executable, "-m", "service.cli", "screen", str(folder), "--out", str(tmp_path / "out")]
    subprocess.run([*command, "--as-of", AS_OF, "--workers", "1"], cwd=ROOT, timeout=60, check=True)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input"]["lines"] == {"blank": 50_000_000}


def test_a_gzip_file_over_the_decompressed_limit_is_skipped_whole(export: Export, tmp_path: Path) -> None:
    folder = copy(export, tmp_path / "export", gz=True)
    sizes = {p.name: len(gzip.decompress(p.read_bytes())) for p in folder.iterdir()}
    largest = max(sizes, key=sizes.__getitem__)
    limit = max(size for name, size in sizes.items() if name != largest)  # only the largest is over
    out = tmp_path / "out"
    over = ("--max-decompressed-bytes", str(limit))
    assert screen(folder, out, "--as-of", AS_OF, "--workers", "2", *over) == 0
    (problem,) = read_ndjson(out / "input-problems.ndjson")
    assert problem["file"] == largest and problem["kind"] == "too-large" and problem["line"] > 1
    assert f"decompresses to more than {limit:,} bytes" in problem["problem"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["tooLargeFiles"] == [largest]
    # nothing of that file is used: the same as the export without it
    (folder / largest).unlink()
    assert screen(folder, tmp_path / "without", "--as-of", AS_OF, "--workers", "1") == 0
    assert results(out) == results(tmp_path / "without")
    without = json.loads((tmp_path / "without" / "summary.json").read_text())["input"]
    assert summary["input"]["lines"] == without["lines"]


@pytest.mark.parametrize("batch", [None, 20_000], ids=["one pass", "in batches"])
def test_a_patient_over_the_byte_limit_is_refused_unread_and_the_others_are_not_affected(
    export: Export, tmp_path: Path, batch: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = tmp_path / "whole"
    assert screen(export.folder, whole, "--as-of", AS_OF, "--workers", "1", "--partitions", "2") == 0
    if batch is not None:  # a partition (about 200 kB) grouped 20 kB of patients at a time
        monkeypatch.setattr(partitions, "BATCH_BYTES", batch)  # in this process: --workers 1
    out = tmp_path / "out"
    limit = ("--max-patient-bytes", "3K")
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "1", "--partitions", "2", *limit) == 0
    refused = {r["patient"]: r for r in read_ndjson(out / "not-assessed.ndjson")}
    assert refused and all(r["status"] == 413 for r in refused.values())
    assert all("more than 3,072 (--max-patient-bytes)" in r["problems"][0] for r in refused.values())
    kept = results(out)
    assert kept == {p: line for p, line in results(whole).items() if p not in refused}
    assert len(kept) > 20
    # in the same order as without a limit: sorted within each partition
    order = [json.loads(line)["patient"] for line in (whole / "results.ndjson").read_text().splitlines()]
    assert list(kept) == [p for p in order if p not in refused]
