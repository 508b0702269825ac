"""The bad-input corpus (tests/bad_inputs): each body gets its documented status, and every refusal is a
FHIR OperationOutcome that says why, never a stack trace.

The bodies are rebuilt by tests/bad_inputs/build.py into a temporary folder (the big ones are not
committed); the committed ones must equal what build.py writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support import validate_fhir

CORPUS = Path(__file__).parents[1] / "bad_inputs"
BUILD = CORPUS / "build.py"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
NOT_BODIES = {"README.md", "build.py", "expected.json", ".gitignore"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bad_inputs")
    subprocess.run([sys.executable, str(BUILD), str(out)], check=True, timeout=120)
    return out


def _params() -> list[Any]:
    params = []
    for name, case in sorted(EXPECTED.items()):
        marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if "xfail" in case else []
        params.append(pytest.param(name, case, id=name, marks=marks))
    return params


def test_the_corpus_has_at_least_40_files(built: Path) -> None:
    bodies = [p for p in built.iterdir() if p.name not in NOT_BODIES]
    assert len(bodies) >= 40
    assert {p.name for p in bodies} == set(EXPECTED)


def test_build_output_is_up_to_date(built: Path) -> None:
    """Every committed file equals build.py's output; the ones not committed are in its .gitignore."""
    ignored = {
        line.lstrip("/")
        for line in (built / ".gitignore").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    for path in sorted(built.iterdir()):
        committed = CORPUS / path.name
        if committed.exists():
            assert committed.read_bytes() == path.read_bytes(), f"{path.name} is stale: run {BUILD}"
        else:
            assert path.name in ignored, f"{path.name} is missing: run {BUILD}"
    stray = {p.name for p in CORPUS.iterdir() if p.is_file()} - NOT_BODIES - {p.name for p in built.iterdir()}
    assert not stray, f"files build.py no longer writes: {sorted(stray)}"


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text
    assert 'File "' not in text


@pytest.mark.parametrize(("name", "case"), _params())
def test_bad_input_gets_its_status(client: FlaskClient, built: Path, name: str, case: dict[str, Any]) -> None:
    path = "/fhir/$assess" + (f"?{case['query']}" if case.get("query") else "")
    response = client.post(path, data=(built / name).read_bytes(), content_type=case["contentType"])
    text = response.get_data(as_text=True)
    _no_traceback(text)
    assert response.status_code == case["status"], f"{case['why']}: {text[:500]}"
    if response.status_code == 401:
        assert response.get_data() == b""
        return
    assert response.mimetype == "application/fhir+json"
    body = json.loads(text)
    if response.status_code == 200:
        assert body["resourceType"] == "Bundle"
        assert body["entry"][0]["resource"]["resourceType"] == "RiskAssessment"
        validate_fhir(body)
        return
    assert body["resourceType"] == "OperationOutcome", text[:500]
    diagnostics = [i.get("diagnostics") for i in body.get("issue", [])]
    assert any(isinstance(d, str) and d.strip() for d in diagnostics), text[:500]
    if "expression" in case:  # the refusal names the offending element (FHIRPath-like)
        expressions = [e for i in body["issue"] for e in i.get("expression", [])]
        assert case["expression"] in expressions, text[:500]
    validate_fhir(body)
