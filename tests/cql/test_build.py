"""``make cql``: the committed CQL and ELM are what the rule table, codes.json and the translator give.

The translator (cqframework's JavaScript build, pinned in cql/package-lock.json) runs here as in
``make cql``: no drift, no error, no warning but the ones read and accepted in service/cql/build.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.assess import Assessment, Assessor
from service.codebook import load_codebook
from service.cql.build import ROOT, messages, render, unaccepted
from service.cql.generate import cql_text
from service.cql.library import CQL_DIR, cql_file, elm_file
from service.cql.npm import FOLDER, locked
from service.rules.table import load_table
from tests.cql.engine import Case, job, node_ready, python_side, run_cql

TABLE = load_table()


@pytest.fixture(scope="module")
def rendered() -> dict[Path, str]:
    node_ready()
    return render()


def test_the_committed_files_are_what_make_cql_writes(rendered: dict[Path, str]) -> None:
    assert sorted(p.name for p in rendered) == [
        f"NeckcheckEscalation-{TABLE.version}.cql",
        f"NeckcheckEscalation-{TABLE.version}.elm.json",
    ]
    for path, text in rendered.items():
        assert path.read_text(encoding="utf-8") == text, f"{path} has drifted: run `make cql` and commit"


def test_the_package_reads_the_same_files() -> None:
    """service/data/schemas links to schemas/: the files the Library publishes are the committed ones."""
    assert cql_file(TABLE.version, CQL_DIR).read_text() == cql_text(TABLE, load_codebook())
    assert CQL_DIR.resolve() == (ROOT / "schemas" / "cql").resolve()


def test_the_translator_reports_no_error_and_only_read_warnings() -> None:
    elm = json.loads(elm_file(TABLE.version, CQL_DIR).read_text())
    found = messages(elm)
    assert unaccepted(found, TABLE) == []
    assert {m.severity for m in found} <= {"warning"}
    # the read ones: a string equal to a definition's name, as "Rules Fired" and the lookbacks report them
    assert all("matches the identifier" in m.text for m in found)


def test_a_cql_error_fails_the_build() -> None:
    """What ``make cql`` does with a library that does not translate: it stops, naming the line."""
    broken = cql_text(TABLE, load_codebook()).replace('"facial-numbness" and', '"facial-numbnes" and', 1)
    node_ready()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from service.cql.build import translate; from service.rules.table import load_table; "
            f"translate({broken!r}, load_table())",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "facial-numbnes" in done.stderr and "does not translate cleanly" in done.stderr


def test_the_elm_names_the_pinned_translator() -> None:
    elm = json.loads(elm_file(TABLE.version, CQL_DIR).read_text())
    info = next(a for a in elm["library"]["annotation"] if a["type"] == "CqlToElmInfo")
    pins = {place.rsplit("node_modules/", 1)[-1]: spec["version"] for place, spec in locked(FOLDER).items()}
    assert info["translatorVersion"] == pins["@cqframework/cql"] == "5.3.0"
    assert (pins["cql-execution"], pins["cql-exec-fhir"]) == ("3.3.2", "2.2.0")
    assert all(spec["integrity"].startswith("sha512-") for spec in locked(FOLDER).values())


def _definition(cql: str, name: str) -> str:
    match = re.search(rf'^define "{re.escape(name)}":\n(.*?)(?=^\S|\Z)', cql, re.M | re.S)
    assert match, name
    return match.group(1)


def test_no_fact_or_rule_is_tested_with_exists() -> None:
    """exists() of nothing recorded is false: a fact or rule defined with it would read unknown as no."""
    cql = cql_file(TABLE.version, CQL_DIR).read_text()
    for name in [*TABLE.facts, *(r.id for r in TABLE.rules)]:
        body = _definition(cql, name)
        assert "exists" not in body.replace('if not exists "facial-numbness-days current readings"', ""), name


def test_a_fact_with_no_reading_is_null_not_false(assessor: Assessor) -> None:
    """Only neck pain recorded: every other fact the rules read is unknown (null), and so are the rules
    that need one of them; the result is preliminary, the urgent signs first to ask."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": "2026-03-10T09:00:00Z",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "neck",
                    "status": "final",
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "81680005"}]},
                    "subject": {"reference": "Patient/p1"},
                    "effectiveDateTime": "2026-03-10T08:00:00Z",
                    "valueBoolean": True,
                }
            }
        ],
    }
    case = Case("neck-pain only", bundle)
    result = python_side(assessor, case)
    assert isinstance(result, Assessment)
    names = [*TABLE.facts, *(r.id for r in TABLE.rules), "Status", "Facts To Ask"]
    (found,) = run_cql([job(case, result, names)], TABLE.version).values()
    assert found.pop("neck-pain") is True
    assert found.pop("Status") == "preliminary"
    assert found.pop("Facts To Ask")[:4] == [
        "vision-change",
        "slurred-speech",
        "weakness",
        "symptoms-worsening",
    ]
    assert found == dict.fromkeys(found)  # every other fact and every rule: null


def test_no_evaluation_time_means_now(assessor: Assessor) -> None:
    """ "Evaluation Time" null is CQL's Now(), as $assess uses the clock when the Bundle has no timestamp:
    S5 recorded on 2026-03-10, assessed today, has only stale readings in both engines."""
    bundle = json.loads((ROOT / "tests" / "fixtures" / "scenarios" / "S5-observations.json").read_text())
    del bundle["timestamp"]
    case = Case("S5 at the clock", bundle)
    result = python_side(assessor, case)
    assert isinstance(result, Assessment) and result.intake.stale
    now = {**job(case, result, ["Risk", "Status", "Facts To Ask", "Rules Fired"]), "evaluationTime": None}
    (found,) = run_cql([now], TABLE.version).values()
    decision = result.decision
    assert found == {
        "Risk": decision.risk,
        "Status": "preliminary",
        "Facts To Ask": list(decision.ask_about),
        "Rules Fired": [],
    }
