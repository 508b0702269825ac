"""The published ELM, run by the reference CQL engine, gives what neckcheck gives: every scenario fixture and
example, every golden output, and 2,200 random patients (tests/cql/patients.py).

For each patient, "Risk", "Status", "Proposed Orders", "Rules Fired" and "Facts To Ask" must equal
Assessor.run's decision (the engine behind $assess), and so must every fact a rule reads (the CQL fact
definitions against intake's facts). A difference fails and prints the patient. The CQL engine runs once for
all of them (one Node.js process).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from service.assess import Assessment, Assessor
from service.cql.library import CQL_DIR, elm_file
from service.errors import NeckcheckError
from service.fhir_values import parse_datetime
from service.rules.table import DEFAULT_TABLE, load_table
from tests.cql.engine import (
    OUTPUTS,
    Case,
    cql_facts,
    facts,
    facts_read,
    job,
    outputs,
    python_side,
    run_cql,
)
from tests.cql.patients import generated
from tests.scenarios import ASSESSED, GOLDEN, SCENARIOS
from tests.support import summary

TABLE = load_table()
EXAMPLES = Path(__file__).parents[1] / "fixtures" / "examples"
GENERATED, SEED = 2200, 20261203
EXPRESSIONS = [*OUTPUTS, *facts_read(TABLE)]  # the outputs, and each fact a rule reads


def fixture_case(path: Path) -> Case:
    """A fixture as $assess reads it: a Bundle, or the operation's Parameters (bundle + explicit asOf)."""
    body = json.loads(path.read_text(encoding="utf-8"))
    if body["resourceType"] != "Parameters":
        return Case(path.name, body)
    parts = {p["name"]: p for p in body["parameter"]}
    as_of = parse_datetime(parts["asOf"]["valueDateTime"], "asOf") if "asOf" in parts else None
    return Case(path.name, parts["bundle"]["resource"], as_of=as_of)


FIXTURES = [fixture_case(SCENARIOS / name) for name in ASSESSED] + [
    fixture_case(path) for path in sorted(EXAMPLES.glob("*.json"))
]


class Compared:
    """Both engines' answers for every case, computed once for the module."""

    def __init__(self, assessor: Assessor, cases: list[Case]) -> None:
        self.cases = cases
        ran = {case.id: python_side(assessor, case) for case in cases}
        self.refused = {cid: r for cid, r in ran.items() if isinstance(r, NeckcheckError)}
        self.python: dict[str, Assessment] = {cid: r for cid, r in ran.items() if isinstance(r, Assessment)}
        jobs = [job(c, self.python[c.id], EXPRESSIONS) for c in cases if c.id in self.python]
        self.cql = run_cql(jobs, TABLE.version)

    def differences(
        self,
        ids: list[str],
        python: dict[str, Assessment] | None = None,
        cql: dict[str, dict[str, Any]] | None = None,
    ) -> list[str]:
        """Each case where the two disagree, with the patient (``python``, ``cql``: other answers)."""
        python, cql = python or self.python, cql or self.cql
        out = []
        for cid in ids:
            expected = {**outputs(python[cid]), **facts(python[cid], TABLE)}
            found = {**{k: cql[cid][k] for k in OUTPUTS}, **cql_facts(cql[cid], TABLE)}
            if expected != found:
                case = next(c for c in self.cases if c.id == cid)
                differ = sorted(k for k in expected if expected[k] != found[k])
                out.append(
                    f"{cid} (asOf {case.as_of}, clock {case.now}): "
                    + "; ".join(f"{k}: neckcheck {expected[k]!r}, CQL {found[k]!r}" for k in differ)
                    + f"\n  patient: {json.dumps(case.bundle)}"
                )
        return out


@pytest.fixture(scope="module")
def compared(assessor: Assessor) -> Compared:
    return Compared(assessor, [*FIXTURES, *generated(GENERATED, SEED)])


def _report(found: list[str], of: int) -> str:
    return f"{len(found)} of {of} patients differ; the first ones:\n" + "\n".join(found[:5])


def test_every_scenario_fixture_and_example_gives_the_same_result(compared: Compared) -> None:
    ids = [c.id for c in FIXTURES]
    assert not [i for i in ids if i in compared.refused], "a fixture that $assess assesses was refused"
    found = compared.differences(ids)
    assert not found, _report(found, len(ids))


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("*.json")))
def test_the_cql_result_is_the_golden_output(compared: Compared, name: str) -> None:
    """The golden files are $assess's answers over HTTP, byte for byte: the CQL says the same of them."""
    golden = summary(json.loads((GOLDEN / name).read_text(encoding="utf-8")))
    cql = compared.cql[name]
    orders = sorted(({"code": o["key"], "priority": o["priority"]} for o in cql["Proposed Orders"]), key=str)
    assert (cql["Status"], cql["Risk"], orders) == (
        golden["status"],
        golden["risk"],
        sorted(golden["orders"], key=str),
    )


def test_generated_patients_give_the_same_result(compared: Compared) -> None:
    ids = [c.id for c in compared.cases[len(FIXTURES) :] if c.id in compared.python]
    assert len(ids) >= 2000, f"only {len(ids)} generated patients could be assessed"
    found = compared.differences(ids)
    assert not found, _report(found, len(ids))


def test_the_generated_patients_reach_every_outcome_and_input_rule(compared: Compared) -> None:
    """The comparison means something only if the patients cover the ground: every risk, both statuses,
    every rule, questions to ask, stale readings, evidence after an explicit asOf, conflicts, unfinished
    questionnaires, and both Observation patterns."""
    results = [compared.python[c.id] for c in compared.cases[len(FIXTURES) :] if c.id in compared.python]
    seen: Counter[str] = Counter()
    for result in results:
        decision, intake = result.decision, result.intake
        seen[f"risk {decision.risk}"] += 1
        seen["final" if decision.final else "preliminary"] += 1
        seen.update(f"fired {r.rule.id}" for r in decision.fired)
        seen["facts to ask"] += bool(decision.ask_about)
        seen["stale reading"] += bool(intake.stale)
        seen["conflict"] += bool(intake.conflicts)
        seen["unfinished questionnaire"] += intake.in_progress
        seen["later than asOf, not used"] += any(
            "given as asOf: not used" in s.reason for s in intake.skipped
        )
    wanted = [f"risk {r}" for r in ("negligible", "low", "moderate", "high")]
    wanted += [
        "final",
        "preliminary",
        "facts to ask",
        "stale reading",
        "conflict",
        "unfinished questionnaire",
    ]
    wanted += [f"fired {r.id}" for r in TABLE.rules]
    wanted += ["later than asOf, not used"]
    assert all(seen[w] >= 20 for w in wanted), {w: seen[w] for w in wanted}


def test_refusals_are_few_and_only_for_data_the_rules_cannot_assess(compared: Compared) -> None:
    """A Bundle $assess refuses (4xx) has no CQL result to compare: no usable fact, or an onset after the
    evaluation time. They stay a small share of the generated patients."""
    reasons: Counter[Any] = Counter(type(r).__name__ for r in compared.refused.values())
    assert set(reasons) <= {"NoFacts", "Unprocessable"}, reasons
    assert sum(reasons.values()) < GENERATED // 50, reasons


# --- the comparison catches a rule changed in only one of the two engines ---

CHANGED = "persistent-numbness"  # changed to "numbness beyond three weeks" (greaterThan 14 -> 21)


def _literals(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "Literal" else []
        return found + [x for value in node.values() for x in _literals(value)]
    if isinstance(node, list):
        return [x for value in node for x in _literals(value)]
    return []


def _sample(compared: Compared) -> list[str]:
    return [c.id for c in compared.cases if c.id in compared.python][:300]


def test_a_rule_changed_in_the_cql_alone_fails_the_comparison(compared: Compared, tmp_path: Path) -> None:
    elm = json.loads(elm_file(TABLE.version, CQL_DIR).read_text(encoding="utf-8"))
    (definition,) = [d for d in elm["library"]["statements"]["def"] if d["name"] == CHANGED]
    (days,) = [x for x in _literals(definition["expression"]) if x["value"] == "14"]
    days["value"] = "21"
    changed = tmp_path / "changed.elm.json"
    changed.write_text(json.dumps(elm), encoding="utf-8")
    ids = _sample(compared)
    by_id = {c.id: c for c in compared.cases}
    jobs = [job(by_id[i], compared.python[i], EXPRESSIONS) for i in ids]
    found = compared.differences(ids, cql=run_cql(jobs, TABLE.version, elm=changed))
    assert found and all(CHANGED in line for line in found), found[:3]


def test_a_rule_changed_in_neckcheck_alone_fails_the_comparison(compared: Compared, tmp_path: Path) -> None:
    raw = json.loads(DEFAULT_TABLE.read_text(encoding="utf-8"))
    (rule,) = [r for r in raw["rules"] if r["id"] == CHANGED]
    rule["when"]["all"][1]["greaterThan"] = 21
    edited = tmp_path / "table.json"
    edited.write_text(json.dumps(raw), encoding="utf-8")
    changed = Assessor.load(rules=edited)
    ids = _sample(compared)
    by_id = {c.id: c for c in compared.cases}
    python = {i: changed.run(by_id[i].bundle, as_of=by_id[i].as_of, now=by_id[i].now) for i in ids}
    found = compared.differences(ids, python=python)
    assert found and all(CHANGED in line for line in found), found[:3]
