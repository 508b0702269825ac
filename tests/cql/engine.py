"""Both engines on the same inputs: neckcheck's (Assessor.run, what $assess runs) and the reference CQL engine
running the published ELM (``cql/evaluate.cjs``: cql-execution + cql-exec-fhir, under Node.js).

What a clean machine lacks is installed, never skipped: Debian's ``nodejs`` (apt-get) and the pinned CQL
packages (``service.cql.npm``, each tarball checked against its sha512). The CQL engine runs once for a
whole batch of patients (one Node process), so thousands of patients cost seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from service.assess import Assessment, Assessor
from service.cql.build import node
from service.cql.library import CQL_DIR, elm_file
from service.cql.npm import FOLDER, install
from service.errors import NeckcheckError
from service.rules.table import RuleTable
from tests.debian import apt_install

EVALUATE = FOLDER / "evaluate.cjs"
OUTPUTS = ("Risk", "Status", "Proposed Orders", "Rules Fired", "Facts To Ask")


@dataclass(frozen=True)
class Case:
    """One patient: the Bundle, and how it is assessed (explicit ``as_of``, or the clock's ``now``)."""

    id: str
    bundle: dict[str, Any]
    as_of: dt.datetime | None = None
    now: dt.datetime | None = None


def node_ready() -> str:
    if shutil.which("node") is None and shutil.which("nodejs") is None:
        apt_install("nodejs")
    install()
    return node()


def python_side(assessor: Assessor, case: Case) -> Assessment | NeckcheckError:
    try:
        return assessor.run(case.bundle, as_of=case.as_of, now=case.now)
    except NeckcheckError as refused:  # a 4xx: nothing to compare, the CQL has no error outputs
        return refused


def outputs(result: Assessment) -> dict[str, Any]:
    """The Python engine's answer, in the shape of the CQL library's outputs."""
    decision = result.decision
    return {
        "Risk": decision.risk,
        "Status": "final" if decision.final else "preliminary",
        "Proposed Orders": [{"key": o.key, "priority": o.priority} for o in decision.orders],
        "Rules Fired": [r.rule.id for r in decision.fired],
        "Facts To Ask": list(decision.ask_about),
    }


def facts(result: Assessment, table: RuleTable) -> dict[str, Any]:
    """The facts the rules read, as the CQL fact definitions give them (a side as one-sided or both)."""
    out: dict[str, Any] = {}
    for name, fact in table.facts.items():
        if fact.informational or fact.kind == "date":
            continue
        found = result.intake.facts.get(name)
        out[name] = _comparable(fact.kind, None if found is None else found.value)
    return out


def _comparable(kind: str, value: Any) -> Any:
    if kind == "side" and value in ("left", "right"):
        return "one-sided"  # a left/right tie goes to either: both are one-sided, which is all a rule reads
    return value


def cql_facts(results: dict[str, Any], table: RuleTable) -> dict[str, Any]:
    return {name: _comparable(table.facts[name].kind, results[name]) for name in facts_read(table)}


def facts_read(table: RuleTable) -> list[str]:
    return [n for n, f in table.facts.items() if not f.informational and f.kind != "date"]


def job(case: Case, result: Assessment, expressions: list[str]) -> dict[str, Any]:
    """The CQL engine's input for one case: the evaluation time $assess used, and whether it was explicit."""
    return {
        "id": case.id,
        "bundle": case.bundle,
        "evaluationTime": result.intake.as_of.isoformat(),
        "explicitAsOf": case.as_of is not None,
        "expressions": expressions,
    }


def run_cql(jobs: list[dict[str, Any]], version: str, elm: Any = None) -> dict[str, dict[str, Any]]:
    """The CQL engine's results by case id, for every job, in one Node process. ``elm``: another ELM file."""
    command = [node_ready(), str(EVALUATE), str(elm or elm_file(version, CQL_DIR))]
    lines = "".join(json.dumps(j) + "\n" for j in jobs)
    env = {**os.environ, "TZ": "UTC"}  # a dateTime with a time but no zone is UTC to neckcheck (fields.py)
    done = subprocess.run(
        command, input=lines, capture_output=True, text=True, timeout=600, check=False, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    errors = [a for a in answers if "error" in a]
    assert not errors, errors[0]
    return {a["id"]: a["results"] for a in answers}
