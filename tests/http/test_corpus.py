"""Real public FHIR R4 examples (tests/fixtures/corpus, copied from ../shared/corpus): a clear 200 or 4xx."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

CORPUS = Path(__file__).parents[1] / "fixtures" / "corpus"
FILES = sorted(p for p in CORPUS.rglob("*.json"))


def test_the_corpus_is_there() -> None:
    assert len(FILES) >= 60


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_corpus_file_gets_200_or_4xx_operation_outcome(client: FlaskClient, path: Path) -> None:
    response = client.post("/fhir/$assess", data=path.read_bytes(), content_type="application/fhir+json")
    assert response.status_code == 200 or 400 <= response.status_code < 500
    body = response.get_json()
    if response.status_code != 200:
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["diagnostics"]
    else:
        assert body["entry"][0]["resource"]["resourceType"] == "RiskAssessment"
