"""``neckcheck screen`` with a FHIR endpoint: the export flags go with an endpoint only, and are checked
before anything is asked of a server."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from service.screen.command import duration
from tests.screen.support import screen


@pytest.mark.parametrize(
    ("source", "args", "said"),
    [
        ("https://ehr.example/fhir/Patient", ["--client-id", "c1"], "--client-id and --key go together"),
        ("https://ehr.example/fhir/Patient", ["--since", "yesterday"], "--since is not a FHIR date/dateTime"),
        ("http://ehr.example/fhir/Patient", [], "use https (http only to this machine)"),
        ("{export}", ["--since", "2026-01-01"], "--since: only with a FHIR endpoint as INPUT"),
        ("{export}", ["--keep-export"], "--keep-export: only with a FHIR endpoint as INPUT"),
    ],
)
def test_export_flags_are_checked_before_anything_is_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, args: list[str], said: str
) -> None:
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "Patient.ndjson").write_text('{"resourceType":"Patient","id":"p1"}\n')
    assert screen(source.format(export=tmp_path / "export"), tmp_path / "out", *args) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_export_timeout_reads_seconds_minutes_and_hours() -> None:
    assert [duration(t) for t in ("90", "90s", "30m", "6h", "1.5h")] == [90, 90, 1800, 21600, 5400]
    with pytest.raises(argparse.ArgumentTypeError):
        duration("soon")
