"""Synthetic FHIR Bulk Data exports of any size, for the screening tests and benchmark (test data only).

    python -m benchmarks.bulk_export OUTDIR --patients 10000 [--seed 1] [--gzip] [--file-lines 100000]

Each patient copies one public scenario (tests/fixtures/scenarios, S1-S13: Observations in both coding
patterns of rules.md §4, or a QuestionnaireResponse) under a new id, with random variation: a boolean
Observation rewritten as LOINC 75325-1 "Symptom" with the finding as its value, or with a Y/N value; a
conflicting record (the opposite value, earlier or later); an entered-in-error copy with the opposite
value; a record dated after the scenarios' evaluation time; a referral already in the data (a
ServiceRequest with an order code of codes.json, sometimes entered-in-error, sometimes a cervical-spine
MRI that is no brain imaging); unrelated resources (a body-weight Observation, Condition and
MedicationStatement with text only); and some patients with no neck or face data at all. One NDJSON file
per resource type (split every ``file_lines`` lines), plus a Bulk Data manifest ``export.json``.
Deterministic for a seed: the same arguments write the same bytes.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "tests" / "fixtures" / "scenarios"
CODES: dict[str, Any] = json.loads((ROOT / "schemas" / "codes.json").read_text(encoding="utf-8"))
AS_OF = "2026-03-10T09:00:00Z"  # every scenario's Bundle.timestamp: screen with --as-of this
LATER = "2026-03-12T09:00:00Z"  # after it: not used under --as-of AS_OF
EARLIER = "2026-03-01T09:00:00Z"
YES_NO = CODES["yesNo"]["system"]
BODY_WEIGHT = {"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}
BAD_LINES = (
    b'{"resourceType": "Observation", "status": "final"',  # truncated
    b"[1, 2, 3]",  # not an object
    b'{"id": "x", "status": "final"}',  # no resourceType
    b'{"resourceType": "Observation", "resourceType": "Patient"}',  # duplicate key
    b"not json at all",
)


def templates() -> list[list[dict[str, Any]]]:
    """The resources of each assessed scenario fixture (S14 and S15 are refusals, not patients)."""
    expected = json.loads((SCENARIOS / "expected.json").read_text(encoding="utf-8"))
    names = sorted(name for name, exp in expected.items() if "status" in exp)
    bundles = [json.loads((SCENARIOS / name).read_text(encoding="utf-8")) for name in names]
    return [[entry["resource"] for entry in bundle["entry"]] for bundle in bundles]


@dataclass
class Export:
    folder: Path
    manifest: Path
    patients: list[str] = field(default_factory=list)  # "Patient/<id>", in the order written
    bad: list[tuple[str, int]] = field(default_factory=list)  # (file, line) of each malformed line


class _Files:
    """One file per resource type, split every ``limit`` lines (Bulk Data servers split large types)."""

    def __init__(self, folder: Path, gz: bool, limit: int):
        self.folder, self.gz, self.limit = folder, gz, limit
        self.open: dict[str, tuple[IO[bytes], str, int]] = {}  # type -> (stream, name, lines)
        self.names: list[tuple[str, str]] = []  # (type, file name)
        self.count: dict[str, int] = {}

    def write(self, rtype: str, line: bytes) -> tuple[str, int]:
        stream, name, lines = self.open.get(rtype, (None, "", 0))
        if stream is None or (self.limit and lines >= self.limit):
            if stream is not None:
                stream.close()
            part = self.count.get(rtype, 0)
            self.count[rtype] = part + 1
            name = f"{rtype}.{part:03d}.ndjson" + (".gz" if self.gz else "")
            path = self.folder / name
            stream = gzip.GzipFile(path, "wb", mtime=0) if self.gz else path.open("wb")
            self.names.append((rtype, name))
            lines = 0
        stream.write(line + b"\n")
        self.open[rtype] = (stream, name, lines + 1)
        return name, lines + 1

    def close(self) -> None:
        for stream, _, _ in self.open.values():
            stream.close()


def write_export(
    folder: Path, patients: int, seed: int = 1, gz: bool = False, file_lines: int = 0, bad_lines: int = 0
) -> Export:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    shapes = templates()
    files = _Files(folder, gz, file_lines)
    export = Export(folder, folder / "export.json")
    bad_at = set(rng.sample(range(patients), min(bad_lines, patients)))
    for i in range(patients):
        pid = f"gen-{seed}-{i}"
        export.patients.append(f"Patient/{pid}")
        for resource in _patient(rng, shapes, pid):
            files.write(resource["resourceType"], json.dumps(resource).encode("utf-8"))
        if i in bad_at:
            rtype = rng.choice(["Observation", "QuestionnaireResponse", "Condition"])
            export.bad.append(files.write(rtype, rng.choice(BAD_LINES)))
    files.close()
    manifest = {
        "transactionTime": AS_OF,
        "request": "https://ehr.example.org/fhir/$export",
        "requiresAccessToken": False,
        "output": [{"type": rtype, "url": name} for rtype, name in files.names],
        "error": [],
    }
    export.manifest.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return export


def _patient(rng: random.Random, shapes: list[list[dict[str, Any]]], pid: str) -> Iterator[dict[str, Any]]:
    subject = {"reference": f"Patient/{pid}"}
    yield {
        "resourceType": "Patient",
        "id": pid,
        "gender": rng.choice(["female", "male"]),
        "birthDate": f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }
    yield _unrelated(rng, pid, subject)
    if rng.random() < 0.08:  # no neck or face data: no line in results.ndjson
        return
    encounter = None
    if rng.random() < 0.5:
        encounter = {"reference": f"Encounter/{pid}-enc"}
        yield {"resourceType": "Encounter", "id": f"{pid}-enc", "status": "finished", "subject": subject}
    made = []
    for n, template in enumerate(rng.choice(shapes)):
        resource = copy.deepcopy(template)
        resource["id"] = f"{pid}-{n}"
        resource["subject"] = subject
        if encounter and resource["resourceType"] == "Observation":
            resource["encounter"] = encounter
        made.append(_vary(rng, resource))
    for resource in list(made):
        if _plain_boolean(resource) and rng.random() < 0.06:
            made.append(_copy(resource, f"{resource['id']}-conflict", rng.choice([EARLIER, LATER])))
        elif _plain_boolean(resource) and rng.random() < 0.05:
            wrong = _copy(resource, f"{resource['id']}-eie", resource.get("effectiveDateTime", AS_OF))
            wrong["status"] = "entered-in-error"
            made.append(wrong)
    yield from made
    if rng.random() < 0.35:
        yield _referral(rng, pid, subject)


def _vary(rng: random.Random, resource: dict[str, Any]) -> dict[str, Any]:
    if not _plain_boolean(resource):
        return resource
    roll = rng.random()
    if roll < 0.25 and resource["valueBoolean"]:  # the finding as the value of LOINC 75325-1 Symptom
        finding = resource["code"]
        resource["code"] = {"coding": [dict(CODES["symptom"])]}
        resource["valueCodeableConcept"] = finding
        del resource["valueBoolean"]
    elif roll < 0.5:  # a Y/N answer instead of a boolean
        answer = CODES["yesNo"]["yes" if resource["valueBoolean"] else "no"]
        resource["valueCodeableConcept"] = {"coding": [{"system": YES_NO, "code": answer}]}
        del resource["valueBoolean"]
    elif roll < 0.53:  # dated after the scenarios' evaluation time
        resource["effectiveDateTime"] = LATER
    return resource


def _plain_boolean(resource: dict[str, Any]) -> bool:
    return (
        resource["resourceType"] == "Observation"
        and isinstance(resource.get("valueBoolean"), bool)
        and "component" not in resource
        and resource.get("status") == "final"
        and "effectivePeriod" not in resource  # the variations below date it with effectiveDateTime
    )


def _copy(resource: dict[str, Any], rid: str, when: str) -> dict[str, Any]:
    other = copy.deepcopy(resource)
    other["id"] = rid
    other["valueBoolean"] = not resource["valueBoolean"]
    other["effectiveDateTime"] = when
    return other


def _referral(rng: random.Random, pid: str, subject: dict[str, Any]) -> dict[str, Any]:
    """A ServiceRequest already in the data, coded as codes.json says an order is recognised."""
    recognised = CODES["draftOrderRecognition"]
    kind = rng.choice(["brain-imaging", "neurology-referral", "physiotherapy-referral", "cervical-spine-mri"])
    coding = {k: v for k, v in rng.choice(recognised[kind]).items() if k in ("system", "code", "display")}
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": f"{pid}-sr",
        "status": rng.choice(["active", "active", "completed", "entered-in-error"]),
        "intent": "order",
        "code": {"coding": [coding]},
        "subject": subject,
        "authoredOn": EARLIER,
    }
    performer = (rng.choice(recognised[kind]).get("with") or {}).get("performerType")
    if kind == "neurology-referral" and coding["code"] == "306206005":
        performer = recognised[kind][1]["with"]["performerType"]
    if performer:
        request["performerType"] = {"coding": [performer]}
    return request


def _unrelated(rng: random.Random, pid: str, subject: dict[str, Any]) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.4:
        return {
            "resourceType": "Observation",
            "id": f"{pid}-weight",
            "status": "final",
            "category": [{"text": "vital-signs"}],
            "code": {"coding": [BODY_WEIGHT]},
            "subject": subject,
            "effectiveDateTime": EARLIER,
            "valueQuantity": {
                "value": rng.randint(50, 110),
                "unit": "kg",
                "system": "http://unitsofmeasure.org",
                "code": "kg",
            },
        }
    if roll < 0.7:
        return {
            "resourceType": "Condition",
            "id": f"{pid}-cond",
            "code": {"text": "hypertension"},
            "subject": subject,
        }
    return {
        "resourceType": "MedicationStatement",
        "id": f"{pid}-med",
        "status": "active",
        "medicationCodeableConcept": {"text": "ibuprofen 400 mg"},
        "subject": subject,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--file-lines", type=int, default=0, help="split a type's file every N lines")
    parser.add_argument("--bad-lines", type=int, default=0, help="malformed lines to insert")
    args = parser.parse_args(argv)
    export = write_export(args.out, args.patients, args.seed, args.gzip, args.file_lines, args.bad_lines)
    print(f"{len(export.patients)} patients in {export.folder} (manifest {export.manifest.name})")


if __name__ == "__main__":
    main()
