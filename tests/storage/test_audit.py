"""The audit trail and the feedback store on SQLite and on a real PostgreSQL server.

An outage of the database never loses a record and never stops an assessment: records wait in the spool
and reach the database once it is back.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from service.storage.database import current_revision, head_revision, make_engine
from service.storage.schema import audit
from tests.postgres import Cluster
from tests.scenarios import body

NECKCHECK = Path(sys.executable).with_name("neckcheck")
_names = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    cluster: Cluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"audit_{next(_names)}")


def neckcheck(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed CLI, with only the given NECKCHECK_* settings in its environment."""
    return subprocess.run(
        [str(NECKCHECK), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def assess(app: Flask, name: str = "S7-observations.json") -> int:
    response = app.test_client().post("/fhir/$assess", data=body(name), content_type="application/fhir+json")
    return response.status_code


def stored(app: Flask) -> int:
    assert app.extensions["neckcheck.audit"].flush()
    with app.extensions["neckcheck.database"].connect() as conn:
        count: int = conn.execute(select(func.count()).select_from(audit)).scalar_one()
        return count


def test_every_assessment_is_audited_without_names_or_free_text(
    make_app: Callable[..., Flask], database_url: str
) -> None:
    app = make_app(database_url=database_url, auto_migrate=True)
    assert assess(app) == 200
    assert app.extensions["neckcheck.audit"].flush()
    (event,) = app.extensions["neckcheck.audit"].since(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert event["channel"] == "http" and event["caller"] == "dev"
    assert event["rule_set"] == "neckcheck-escalation 1.0.0"
    assert (event["status"], event["risk"]) == ("final", "high")
    assert len(event["input_hash"]) == 64
    assert all(i.startswith("Observation/") for i in event["input_ids"]) and len(event["input_ids"]) == 9
    assert len(event["output_ids"]) == 4  # the RiskAssessment and three ServiceRequests
    text = json.dumps(event)
    assert "scn-7" not in text  # the patient is not in the audit record, only the input resources' ids


def test_cds_hooks_calls_are_audited_too(make_app: Callable[..., Flask], database_url: str) -> None:
    from tests.cds.support import hook_request

    app = make_app(database_url=database_url, auto_migrate=True)
    response = app.test_client().post(
        "/cds-services/neckcheck-patient-view",
        data=json.dumps(hook_request("S1-observations.json")),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert app.extensions["neckcheck.audit"].flush()
    (event,) = app.extensions["neckcheck.audit"].since(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert event["channel"] == "cds" and event["risk"] == "moderate"


def test_a_database_that_is_down_spools_and_loses_nothing(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(database_url=f"sqlite:///{tmp_path / 'a.db'}")
    log = app.extensions["neckcheck.audit"]
    good_engine = log.engine
    log.engine = make_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")  # cannot be opened
    assert assess(app) == 200 and assess(app) == 200
    assert log.flush()
    assert log.pending() == 2
    log.engine = good_engine
    assert assess(app) == 200  # the next write replays the spool first
    assert stored(app) == 3 and log.pending() == 0


def test_killing_postgresql_mid_run_loses_nothing(make_app: Callable[..., Flask], postgres: Cluster) -> None:
    app = make_app(database_url=postgres.create_database("outage"), auto_migrate=True)
    client = app.test_client()
    assert assess(app) == 200
    assert stored(app) == 1
    postgres.stop("immediate")  # the database dies, without warning
    try:
        start = time.monotonic()
        assert [assess(app) for _ in range(3)] == [200, 200, 200]  # answers go on
        assert time.monotonic() - start < 15  # each write waits a bounded time at most
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "unreachable" in ready.get_json()["reason"]
        assert app.extensions["neckcheck.audit"].flush()
        assert app.extensions["neckcheck.audit"].pending() == 3
    finally:
        postgres.start()
        postgres.wait_ready()
    assert client.get("/readyz").status_code == 200  # readiness drains the spool
    assert app.extensions["neckcheck.audit"].pending() == 0
    assert stored(app) == 4


def test_without_auto_migrate_postgresql_waits_for_db_upgrade(
    make_app: Callable[..., Flask], postgres: Cluster
) -> None:
    url = postgres.create_database("manual")
    app = make_app(database_url=url)
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503 and "neckcheck db upgrade" in ready.get_json()["reason"]
    done = neckcheck("db", "upgrade", NECKCHECK_DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert current_revision(make_engine(url)) == head_revision()
    assert app.test_client().get("/readyz").status_code == 200


def test_audit_export_as_ndjson(make_app: Callable[..., Flask], database_url: str) -> None:
    app = make_app(database_url=database_url, auto_migrate=True)
    assert assess(app, "S1-observations.json") == 200
    assert app.extensions["neckcheck.audit"].flush()
    assert assess(app, "S5-questionnaire.json") == 200
    assert app.extensions["neckcheck.audit"].flush()
    done = neckcheck("audit", "--since", "2000-01-01", NECKCHECK_DATABASE_URL=database_url)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(e["status"], e["risk"]) for e in lines] == [("final", "moderate"), ("preliminary", "low")]
    future = neckcheck("audit", "--since", "2999-01-01", NECKCHECK_DATABASE_URL=database_url)
    assert future.stdout == ""


def test_cli_evaluate_with_audit(database_url: str, tmp_path: Path) -> None:
    env = {
        "NECKCHECK_DATABASE_URL": database_url,
        "NECKCHECK_AUTO_MIGRATE": "1",
        "NECKCHECK_SPOOL_DIR": str(tmp_path / "spool"),
    }
    if database_url.startswith("postgresql"):
        assert neckcheck("db", "upgrade", **env).returncode == 0
    scenario = Path(__file__).parents[1] / "fixtures" / "scenarios" / "S3-observations.json"
    done = neckcheck("evaluate", "--audit", str(scenario), **env)
    assert done.returncode == 0, done.stderr
    exported = neckcheck("audit", "--since", "2000-01-01", **env)
    assert exported.returncode == 0, exported.stderr
    (event,) = [json.loads(line) for line in exported.stdout.splitlines()]
    assert event["channel"] == "cli" and event["caller"].startswith("cli:") and event["risk"] == "high"
