"""Shadow mode (issue 24): every $assess and hook call is also evaluated under a candidate rule table,
after its answer and without changing it; differences are counted by transition, stored with ids only,
and summarised by `neckcheck rules shadow-report`. A full queue sheds the candidate's work, never a call.

The candidate moves persistent-numbness from 14 to 20 days (as in tests/cli/test_rules_diff.py): numbness
of 17 days fires it live and not under the candidate; 10 days fires it under neither.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from service.config import Settings
from service.errors import ConfigError
from service.shadow import Shadow
from service.storage.schema import shadow_difference
from tests.cds.support import hook_request, searchset
from tests.cli.test_rules_diff import edited, facts_of, rule
from tests.screen.support import AS_OF
from tests.support import bundle_of

NECKCHECK = Path(sys.executable).with_name("neckcheck")
NO_LONGER = "- persistent-numbness (no longer firing)"


@pytest.fixture()
def candidate(tmp_path: Path) -> Path:
    return edited(
        tmp_path, lambda raw: rule(raw, "persistent-numbness")["when"]["all"][1].update(greaterThan=20)
    )


def patient(name: str, days: int) -> dict[str, Any]:
    return bundle_of(*facts_of(name, days, False), timestamp=AS_OF)


def assess(app: Flask, body: dict[str, Any]) -> bytes:
    response = app.test_client().post("/fhir/$assess", json=body)
    assert response.status_code == 200, response.get_data()[:300]
    return response.get_data()


def sample(app: Flask, name: str, **labels: str) -> float:
    value = app.extensions["neckcheck.metrics"].registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


def stored(app: Flask) -> list[dict[str, Any]]:
    assert app.extensions["neckcheck.writer"].flush()
    with app.extensions["neckcheck.database"].connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(shadow_difference))]


def test_answers_are_unchanged_and_a_changed_result_is_counted_and_stored(
    make_app: Callable[..., Flask], candidate: Path, tmp_path: Path
) -> None:
    shadowed = make_app(shadow_rules=str(candidate), database_url=f"sqlite:///{tmp_path / 'shadow.db'}")
    plain = make_app()
    for name, days in (("d17", 17), ("d10", 10)):
        assert assess(shadowed, patient(name, days)) == assess(plain, patient(name, days))  # byte for byte
    assert shadowed.extensions["neckcheck.shadow"].drain()
    # the candidate ran in a child of this process at the lowest priority, not on one of its threads
    children = [p.pid for p in multiprocessing.active_children() if p.name == "neckcheck-shadow"]
    assert children and all(pid and os.getpriority(os.PRIO_PROCESS, pid) == 19 for pid in children)
    assert sample(shadowed, "neckcheck_shadow_evaluations_total", outcome="different") == 1
    assert sample(shadowed, "neckcheck_shadow_evaluations_total", outcome="same") == 1
    assert sample(shadowed, "neckcheck_shadow_transitions_total", kind="rules", transition=NO_LONGER) == 1
    (row,) = stored(shadowed)
    assert (row["channel"], row["subject"]) == ("http", "Patient/d17")
    assert (row["live_rule_set"], row["shadow_rule_set"]) == ("neckcheck-escalation 1.1.0",) * 2
    assert json.loads(row["before"])["rules"] == ["persistent-numbness"]
    assert json.loads(row["after"])["rules"] == []
    assert f"rules: {NO_LONGER}" in json.loads(row["transitions"])
    # ids and results only: nothing of the chart (no values, no codes, no resource ids)
    assert set(row) == {c.name for c in shadow_difference.columns}
    assert "d17-facial-numbness" not in json.dumps(row, default=str)


def test_a_hook_call_is_shadowed_too(make_app: Callable[..., Flask], candidate: Path) -> None:
    app = make_app(shadow_rules=str(candidate))
    payload = hook_request("S1-observations.json")
    payload["context"]["patientId"] = "d17"
    payload["prefetch"]["patient"]["id"] = "d17"
    payload["prefetch"]["observations"] = searchset(facts_of("d17", 17, False))
    payload["prefetch"]["questionnaireResponses"] = None
    response = app.test_client().post("/cds-services/neckcheck-patient-view", json=payload)
    assert response.status_code == 200 and response.get_json()["cards"]
    assert app.extensions["neckcheck.shadow"].drain()
    assert [(r["channel"], r["subject"]) for r in stored(app)] == [("cds", "Patient/d17")]


def test_a_full_queue_sheds_the_candidates_work_never_a_call(
    make_app: Callable[..., Flask], candidate: Path
) -> None:
    """A queue of one that nothing takes from: the first call waits there, the next two are shed."""
    app = make_app(shadow_rules=str(candidate))
    running: Shadow = app.extensions["neckcheck.shadow"]
    stuck = Shadow(running.tables, running.writer, running.metrics, size=1, start=False)
    app.extensions["neckcheck.shadow"] = stuck
    for _ in range(3):
        assess(app, patient("d17", 17))
    assert sample(app, "neckcheck_shadow_shed_total") == 2
    assert sample(app, "neckcheck_shadow_evaluations_total", outcome="different") == 0


def test_the_shadow_report_summarises_the_stored_differences(
    make_app: Callable[..., Flask], candidate: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'report.db'}"
    app = make_app(shadow_rules=str(candidate), database_url=url)
    for name, days in (("d15", 15), ("d17", 17), ("d17", 17), ("d30", 30)):
        assess(app, patient(name, days))
    assert app.extensions["neckcheck.shadow"].drain()
    assert app.extensions["neckcheck.writer"].flush()
    out = tmp_path / "report"
    done = subprocess.run(
        [str(NECKCHECK), "rules", "shadow-report", "--since", "2026-01-01", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"NECKCHECK_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "3 live calls (2 patients) would have had another result" in done.stdout
    assert f"| Rules | {NO_LONGER} | 3 |" in done.stdout
    data = json.loads((out / "shadow.json").read_text())
    assert data["rules"] == {NO_LONGER: 3} and data["byChannel"] == {"http": 3}
    assert [e["patient"] for e in data["examples"][f"rules: {NO_LONGER}"]] == ["Patient/d15", "Patient/d17"]


def test_a_candidate_that_is_not_a_table_stops_the_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match=r"9\.9\.9: neither a rule table file nor a packaged version"):
        make_app(shadow_rules="9.9.9")
    with pytest.raises(ConfigError, match="NECKCHECK_SHADOW_QUEUE must be 1-1000"):
        Settings.from_mapping({"NECKCHECK_SHADOW_QUEUE": "0"})
