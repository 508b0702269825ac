"""Helpers for the screening tests: run the command, read its outputs, and group an export the plain way.

``patient_bundles`` groups an export by patient without any of service/screen's code, so a test can post
each patient's Bundle to ``$assess`` and compare: the documented contract is one ``collection`` Bundle
per patient of its Observation, QuestionnaireResponse, Patient and Encounter resources, in file order
(files sorted by name), then line order.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from service.cli import main

ROOT = Path(__file__).resolve().parents[2]
# The command with Ctrl-C handled whatever the test runner inherited: a job started in the background
# by a shell without job control (`make test &` in a script, some CI runners) runs with SIGINT ignored, which
# its children inherit, and Python then installs no KeyboardInterrupt handler (the `neckcheck` command
# rightly keeps an ignored SIGINT ignored, as `nohup` asks).
INTERRUPTIBLE = [
    sys.executable,
    "-c",
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('service.cli', run_name='__main__', alter_sys=True)",
]
AS_OF = "2026-03-10T09:00:00Z"  # the scenarios' evaluation time (benchmarks/bulk_export.py)
ASSESSED = ("Observation", "QuestionnaireResponse", "Patient", "Encounter")


def screen(source: Path | str, out: Path, *args: str) -> int:
    return main(["screen", str(source), "--out", str(out), "--progress-every", "60", *args])


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def results(out: Path) -> dict[str, dict[str, Any]]:
    lines = read_ndjson(out / "results.ndjson")
    by_patient = {line["patient"]: line for line in lines}
    assert len(by_patient) == len(lines), "a patient counted twice"
    return by_patient


def sorted_lines(path: Path) -> list[str]:
    return sorted(path.read_text(encoding="utf-8").splitlines())


def patient_bundles(folder: Path) -> dict[str, dict[str, Any]]:
    """Patient → its Bundle, read with json.loads and grouped here (lines that do not parse are left out)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(p for p in folder.iterdir() if p.name.endswith((".ndjson", ".ndjson.gz"))):
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        for line in data.decode("utf-8").splitlines():
            try:
                resource = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(resource, dict) or resource.get("resourceType") not in ASSESSED:
                continue
            if resource["resourceType"] == "Patient":
                groups[f"Patient/{resource['id']}"].append(resource)
            else:
                groups[resource["subject"]["reference"]].append(resource)
    return {
        patient: {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in group]}
        for patient, group in groups.items()
    }


def finding(patient: str, rid: str) -> dict[str, Any]:
    """An Observation of a finding (SNOMED CT 81680005, neck pain) recorded as present for ``patient``."""
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "81680005"}]},
        "subject": {"reference": patient},
        "valueBoolean": True,
    }


def parameters(bundle: dict[str, Any], as_of: str = AS_OF) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "bundle", "resource": bundle}, {"name": "asOf", "valueDateTime": as_of}],
    }
