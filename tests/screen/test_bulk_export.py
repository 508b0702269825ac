"""The synthetic Bulk Data export (benchmarks/bulk_export.py): deterministic, and as varied as it says."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.bulk_export import write_export
from tests.screen.support import read_ndjson


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    one = write_export(tmp_path / "a", 80, seed=3, gz=True, file_lines=100, bad_lines=2)
    two = write_export(tmp_path / "b", 80, seed=3, gz=True, file_lines=100, bad_lines=2)
    assert files(one.folder) == files(two.folder) and one.bad == two.bad
    assert files(write_export(tmp_path / "c", 80, seed=4, gz=True, file_lines=100).folder) != files(
        one.folder
    )


def test_the_export_has_every_kind_of_record_the_screen_must_handle(tmp_path: Path) -> None:
    export = write_export(tmp_path / "x", 300, seed=1, file_lines=500)
    manifest = json.loads(export.manifest.read_text())
    assert {o["url"] for o in manifest["output"]} == {p.name for p in export.folder.glob("*.ndjson")}
    resources = [r for p in sorted(export.folder.glob("*.ndjson")) for r in read_ndjson(p)]
    types = {r["resourceType"] for r in resources}
    assert {"Patient", "Encounter", "Observation", "QuestionnaireResponse", "ServiceRequest"} <= types
    assert {"Condition", "MedicationStatement"} <= types  # not read by neckcheck: skipped and counted
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    codes = {c["code"] for r in observations for c in r["code"]["coding"]}
    assert "75325-1" in codes  # the finding as the value of LOINC Symptom
    assert any("valueBoolean" in r for r in observations)  # the finding as the code
    values = [c for r in observations for c in r.get("valueCodeableConcept", {}).get("coding", [])]
    assert any(c["system"] == "http://terminology.hl7.org/CodeSystem/v2-0136" for c in values)  # Y/N
    assert any(r["status"] == "entered-in-error" for r in observations)
    assert any(r["id"].endswith("-conflict") for r in observations)
    assert any(r.get("effectiveDateTime") == "2026-03-12T09:00:00Z" for r in observations)  # after AS_OF
    assert any(c["code"] == "29463-7" for r in observations for c in r["code"]["coding"])  # unrelated
    requests = [r for r in resources if r["resourceType"] == "ServiceRequest"]
    assert {r["status"] for r in requests} >= {"active", "entered-in-error"}
    assert len(manifest["output"]) > 7  # Observation split over several files
    patients = {r["id"] for r in resources if r["resourceType"] == "Patient"}
    assert len(patients) == 300 == len(export.patients)
