"""Real public FHIR R4 examples (tests/fixtures/corpus, copied from ../shared/corpus): each gets the status
and the reason that tests/fixtures/corpus/expected.json pins for it.

expected.json maps a file (relative to the corpus folder) to its ``status`` and either
``diagnostics`` (phrases that must each appear in an issue of the OperationOutcome: the reason first, then
what was said of individual entries) or, for a 200, ``riskAssessment`` (its status and overall risk).
When the service's answer changes on purpose, the failure prints the entry to paste into expected.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support import summary, validate_fhir

CORPUS = Path(__file__).parents[1] / "fixtures" / "corpus"
EXPECTED_FILE = CORPUS / "expected.json"
EXPECTED: dict[str, dict[str, Any]] = json.loads(EXPECTED_FILE.read_text(encoding="utf-8"))
FILES = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.json") if p != EXPECTED_FILE)


def test_every_corpus_file_has_an_expectation() -> None:
    assert len(FILES) >= 60
    assert sorted(EXPECTED) == FILES, f"{EXPECTED_FILE.name} and the corpus differ"


def observed(status: int, body: dict[str, Any], phrases: int) -> dict[str, Any]:
    """What expected.json would say of this answer (the first ``phrases`` diagnostics of an outcome)."""
    if status == 200:
        result = summary(body)
        return {"status": 200, "riskAssessment": {"status": result["status"], "risk": result["risk"]}}
    return {"status": status, "diagnostics": [i.get("diagnostics") for i in body["issue"]][: max(phrases, 1)]}


@pytest.mark.parametrize("name", FILES)
def test_corpus_file_gets_its_pinned_status_and_reason(client: FlaskClient, name: str) -> None:
    response = client.post(
        "/fhir/$assess", data=(CORPUS / name).read_bytes(), content_type="application/fhir+json"
    )
    body = response.get_json()
    validate_fhir(body)
    want = EXPECTED[name]
    got = observed(response.status_code, body, len(want.get("diagnostics", [])))
    paste = json.dumps({name: got}, indent=1, ensure_ascii=False)[2:-2]
    mismatch = f"{name}: expected.json says\n{json.dumps(want, indent=1)}\nthe service answered:\n{paste}"
    assert response.status_code == want["status"], mismatch
    if response.status_code == 200:
        assert got["riskAssessment"] == want["riskAssessment"], mismatch
        return
    assert body["resourceType"] == "OperationOutcome"
    said = [i.get("diagnostics") or "" for i in body["issue"]]
    for phrase in want["diagnostics"]:
        assert any(phrase in d for d in said), f"no issue says {phrase!r}\n{mismatch}"
