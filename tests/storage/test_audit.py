"""The audit trail on SQLite and on a real PostgreSQL server.

An outage of the database never loses a record and never stops an assessment: records wait in the spool
and reach the database once it is back, and readiness holds (degraded) while the spool can take them.
A record the database refuses for good goes to quarantine instead of blocking the others.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from service.errors import ConfigError
from service.storage.audit import AuditEvent, since
from service.storage.database import current_revision, head_revision, make_engine
from service.storage.feedback_report import feedback_report
from service.storage.schema import audit, cards, feedback
from tests.cds.support import feedback_on, numbered_hook_request
from tests.live import free_port, running
from tests.postgres import Cluster
from tests.scenarios import body
from tests.storage.records import audit_event as event

NECKCHECK = Path(sys.executable).with_name("neckcheck")
PATIENT_VIEW = "/cds-services/neckcheck-patient-view"


def neckcheck(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed CLI, with only the given NECKCHECK_* settings in its environment."""
    return subprocess.run(
        [str(NECKCHECK), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def assess(app: Flask, name: str = "S7-observations.json") -> int:
    response = app.test_client().post("/fhir/$assess", data=body(name), content_type="application/fhir+json")
    return response.status_code


def stored(app: Flask) -> int:
    assert app.extensions["neckcheck.writer"].flush()
    with app.extensions["neckcheck.database"].connect() as conn:
        count: int = conn.execute(select(func.count()).select_from(audit)).scalar_one()
        return count


def test_every_assessment_is_audited_without_names_or_free_text(
    make_app: Callable[..., Flask], database_url: str
) -> None:
    app = make_app(database_url=database_url, auto_migrate=True)
    assert assess(app) == 200
    assert app.extensions["neckcheck.writer"].flush()
    (event,) = since(app.extensions["neckcheck.database"], dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert event["channel"] == "http" and event["caller"] == "dev"
    assert event["rule_set"] == "neckcheck-escalation 1.1.0"
    assert (event["status"], event["risk"]) == ("final", "high")
    assert len(event["input_hash"]) == 64
    assert all(i.startswith("Observation/") for i in event["input_ids"]) and len(event["input_ids"]) == 9
    assert len(event["output_ids"]) == 5  # the RiskAssessment, three ServiceRequests, the GuidanceResponse
    assert len(set(event["output_ids"])) == 5
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
    assert app.extensions["neckcheck.writer"].flush()
    (event,) = since(app.extensions["neckcheck.database"], dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert event["channel"] == "cds" and event["risk"] == "moderate"


def test_a_database_that_is_down_spools_and_loses_nothing(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(database_url=f"sqlite:///{tmp_path / 'a.db'}")
    log = app.extensions["neckcheck.writer"]
    good_engine = log.engine
    log.engine = make_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")  # cannot be opened
    assert assess(app) == 200 and assess(app) == 200
    assert log.flush()
    assert log.pending() == 2
    log.engine = good_engine
    assert app.test_client().get("/readyz").get_json()["status"] == "ready"  # which asks for a replay
    assert stored(app) == 2 and log.pending() == 0
    assert assess(app) == 200
    assert stored(app) == 3


def live_metric(url: str, name: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    (value,) = re.findall(rf"^{name} (\S+)$", text, re.M)
    return float(value)


def count_rows(url: str) -> dict[str, int]:
    with make_engine(url).connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (audit, cards, feedback)
        }


def test_postgresql_killed_mid_run_answers_go_on_readiness_holds_and_every_record_arrives(
    postgres: Cluster, tmp_path: Path
) -> None:
    """The deployed server (gunicorn, two workers) through a real outage of its shared database: audit
    records ($assess and hook calls), cards and feedback all wait in the spool and all arrive."""
    url = postgres.create_database("outage")
    with running(
        tmp_path, NECKCHECK_DATABASE_URL=url, NECKCHECK_AUTO_MIGRATE="1", NECKCHECK_WORKERS="2"
    ) as server:

        def post(number: int) -> list[int]:
            """$assess, a hook call with a card of its own, and feedback on that card."""
            assessed = requests.post(
                f"{server.url}/fhir/$assess",
                data=body("S7-observations.json"),
                headers={"Content-Type": "application/fhir+json"},
                timeout=30,
            )
            # recorded now: the live server assesses a hook call at its own clock
            hook = numbered_hook_request("S1-observations.json", number, recorded=dt.datetime.now(dt.UTC))
            called = requests.post(f"{server.url}{PATIENT_VIEW}", json=hook, timeout=30)
            (card,) = called.json()["cards"]
            answer = feedback_on(card["uuid"])
            said = requests.post(f"{server.url}{PATIENT_VIEW}/feedback", json=answer, timeout=30)
            return [assessed.status_code, called.status_code, said.status_code]

        assert [post(n) for n in range(5)] == [[200] * 3] * 5
        assert requests.get(f"{server.url}/readyz", timeout=10).json()["status"] == "ready"
        postgres.stop("immediate")  # the database dies, without warning
        try:
            start = time.monotonic()
            assert [post(n) for n in range(5, 15)] == [[200] * 3] * 10  # answers go on
            assert time.monotonic() - start < 20  # no answer waits on the database
            deadline = time.monotonic() + 20
            while True:  # the writer threads spool what they could not store
                ready = requests.get(f"{server.url}/readyz", timeout=10)
                if ready.json()["spoolBytes"] > 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert ready.status_code == 200, ready.text
            state = ready.json()
            assert state["status"] == "degraded" and "database unreachable" in state["reason"]
            assert 0 < state["spoolBytes"] < state["spoolMaxBytes"]
            assert live_metric(server.url, "neckcheck_degraded") == 1.0
            assert live_metric(server.url, "neckcheck_ready") == 1.0
            assert live_metric(server.url, "neckcheck_audit_spool_bytes") > 0
        finally:
            postgres.start()
            postgres.wait_ready()
        every = {"audit_event": 30, "cds_card": 15, "cds_feedback": 15}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # readiness checks start the replay
            state = requests.get(f"{server.url}/readyz", timeout=10).json()
            if state["status"] == "ready" and state["spoolBytes"] == 0 and count_rows(url) == every:
                break
            time.sleep(0.2)
        assert (state["status"], state["spoolBytes"]) == ("ready", 0)
        assert count_rows(url) == every  # every record, once
        report = feedback_report(make_engine(url))  # each feedback joined with its card
        assert [(r["rule"], r["shown"], r["overridden"]) for r in report["rules"]] == [
            ("imaging-referral", 15, 15)
        ]
        assert live_metric(server.url, "neckcheck_degraded") == 0.0
        assert (
            live_metric(server.url, "neckcheck_audit_quarantined_total") == 0.0
        )  # an outage is not a refusal
    spools = list((tmp_path / "spool").rglob("*"))
    assert not [p for p in spools if p.is_file()], spools


def unreachable_postgresql() -> str:
    """A PostgreSQL URL where nothing listens: refused at once, like a database that is down."""
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/neckcheck"


def test_readiness_turns_503_when_the_spool_is_full(make_app: Callable[..., Flask]) -> None:
    app = make_app(database_url=unreachable_postgresql(), spool_max_bytes=4096)
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "degraded"
    assert (ready.get_json()["spoolBytes"], ready.get_json()["spoolMaxBytes"]) == (0, 4096)
    answered = 0
    while client.get("/readyz").status_code == 200:
        assert assess(app) == 200
        assert app.extensions["neckcheck.writer"].flush()
        answered += 1
        assert answered < 50
    full = client.get("/readyz").get_json()
    assert full["status"] == "not ready" and "spool is full" in full["reason"]
    assert full["spoolBytes"] >= 4096
    assert assess(app) == 200  # a request that still arrives is answered, and its record kept
    assert app.extensions["neckcheck.writer"].flush()
    assert app.extensions["neckcheck.writer"].pending() == answered + 1
    text = client.get("/metrics").get_data(as_text=True)
    assert "neckcheck_ready 0.0" in text and "neckcheck_degraded 0.0" in text
    assert f"neckcheck_audit_spooled_total {answered + 1}.0" in text


def test_readiness_turns_503_when_the_spool_is_not_writable(
    make_app: Callable[..., Flask], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # the spool directory would have to be inside a file: not even root can
    app = make_app(database_url=unreachable_postgresql(), spool_dir=blocker / "spool")
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503, ready.get_json()
    assert "database unreachable" in ready.get_json()["reason"]
    assert "spool is not writable" in ready.get_json()["reason"]
    assert assess(app) == 200  # the answer is not held back; the lost record is logged and counted
    assert app.extensions["neckcheck.writer"].flush()
    assert "neckcheck_audit_lost_total 1.0" in client.get("/metrics").get_data(as_text=True)
    assert "1 record(s) lost" in caplog.text


def test_the_spool_bound_is_checked_at_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match="NECKCHECK_SPOOL_MAX_BYTES must be at least 4096"):
        make_app(spool_max_bytes=100)


def refused_by_postgresql() -> list[AuditEvent]:
    return [
        event(caller="iss|sub\x00with a NUL"),  # PostgreSQL text cannot hold a NUL byte
        event(channel="x" * 20),  # longer than its column, String(8)
        event(caller="iss|\ud800"),  # valid JSON, but no UTF-8 form: the driver cannot send it
    ]


def quarantined(app: Flask) -> list[dict[str, str]]:
    path: Path = app.extensions["neckcheck.writer"].spool.quarantine_file
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stored_ids(app: Flask) -> set[str]:
    with app.extensions["neckcheck.database"].connect() as conn:
        return set(conn.execute(select(audit.c.id)).scalars())


def test_a_record_postgresql_refuses_leaves_a_live_batch_for_quarantine(
    make_app: Callable[..., Flask], postgres: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(database_url=postgres.create_database("refused_live"), auto_migrate=True)
    log = app.extensions["neckcheck.writer"]
    good = [event() for _ in range(3)]
    bad = refused_by_postgresql()
    assert log.store([good[0], bad[0], good[1], bad[1], good[2], bad[2]]) is True  # one batch
    assert stored_ids(app) == {e.id for e in good}
    entries = {json.loads(q["line"])["id"]: q for q in quarantined(app)}
    assert list(entries) == [bad[2].id, bad[0].id, bad[1].id]  # unsendable first, then as PostgreSQL refused
    assert [q["error"] for q in entries.values()] == ["UnicodeEncodeError", "DataError", "DataError"]
    assert "NUL" in entries[bad[0].id]["reason"] and "too long" in entries[bad[1].id]["reason"]
    assert log.pending() == 0  # nothing left behind to be retried forever
    assert all(e.id in caplog.text for e in bad)
    assert "with a NUL" not in caplog.text  # the log names the record, never its content
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "neckcheck_audit_quarantined_total 3.0" in text
    log.submit(event())  # and the writer goes on
    assert log.flush() and len(stored_ids(app)) == 4
    # the runbook (deploy/README.md): fix the line, put it back as audit-<anything>.ndjson, replay
    fixed = entries[bad[0].id]["line"].replace("\\u0000", "")
    (log.spool.directory / "audit-fixed.ndjson").write_text(fixed + "\n", encoding="utf-8")
    assert log.replay() == 1
    assert bad[0].id in stored_ids(app) and len(quarantined(app)) == 3


def test_a_record_postgresql_refuses_does_not_block_the_spool(
    make_app: Callable[..., Flask], postgres: Cluster
) -> None:
    app = make_app(database_url=postgres.create_database("refused_spool"), auto_migrate=True)
    log = app.extensions["neckcheck.writer"]
    bad = refused_by_postgresql()
    before, after = [event() for _ in range(3)], [event() for _ in range(2)]
    # as the writer spooled them during an outage: the refused records first, in the way of the others
    log.spool.append([bad[0].line(), *(e.line() for e in before), bad[1].line()])
    spooled = next(log.spool.directory.glob("audit-*.ndjson"))
    with spooled.open("a", encoding="utf-8") as file:
        file.write('{"id": "torn by a hard kill')  # a last line cut short, no newline
    log.spool.append([*(e.line() for e in after), bad[2].line()])  # not swallowed by the torn line
    assert log.pending() == 9
    assert log.replay() == 9
    assert stored_ids(app) == {e.id for e in before + after}
    entries = quarantined(app)
    torn = [q for q in entries if q["error"] == "JSONDecodeError"]
    assert [q["line"] for q in torn] == ['{"id": "torn by a hard kill']
    refused = {json.loads(q["line"])["id"]: q["error"] for q in entries if q not in torn}
    assert refused == {bad[0].id: "DataError", bad[1].id: "DataError", bad[2].id: "UnicodeEncodeError"}
    assert log.pending() == 0 and log.spool.size() == 0


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
    assert app.extensions["neckcheck.writer"].flush()
    assert assess(app, "S5-questionnaire.json") == 200
    assert app.extensions["neckcheck.writer"].flush()
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


def records_of(app: Flask) -> list[dict[str, Any]]:
    assert app.extensions["neckcheck.writer"].flush()
    return list(since(app.extensions["neckcheck.database"], dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))


def unrelated_observation(patient: str) -> dict[str, Any]:
    """A blood pressure: an Observation of the patient that gives no fact the rules use."""
    return {
        "resourceType": "Observation",
        "id": "bp-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-03-01T09:00:00Z",
    }


@pytest.mark.parametrize("chart", ["nothing on record", "no fact the rules use"])
def test_a_hook_call_that_finds_nothing_to_assess_is_audited_too(
    make_app: Callable[..., Flask], chart: str
) -> None:
    """The chart was read (prefetched or fetched) whatever it held: one record, with no outputs."""
    from tests.cds.support import hook_request

    app = make_app()
    request = hook_request("S1-observations.json")
    patient = request["context"]["patientId"]
    if chart == "nothing on record":
        request["prefetch"]["observations"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        request["prefetch"]["questionnaireResponses"] = None
    else:
        request["prefetch"]["observations"]["entry"] = [{"resource": unrelated_observation(patient)}]
    answer = app.test_client().post(PATIENT_VIEW, json=request)
    assert answer.status_code == 200 and answer.get_json() == {"cards": []}
    (record,) = records_of(app)
    assert (record["channel"], record["status"], record["risk"]) == ("cds", "no-facts", "none")
    assert record["caller"] == "dev" and record["rule_set"] == "neckcheck-escalation 1.1.0"
    assert record["output_ids"] == [] and len(record["input_hash"]) == 64
    read = [f"Patient/{patient}"] + (["Observation/bp-1"] if chart != "nothing on record" else [])
    assert record["input_ids"] == read


def test_a_hook_call_whose_chart_cannot_be_assessed_is_audited_before_its_422(
    make_app: Callable[..., Flask],
) -> None:
    """The prefetch holds another patient's data: the call is refused, but the chart was read."""
    from tests.cds.support import hook_request

    app = make_app()
    request = hook_request("S1-observations.json", patientId="someone-else")
    answer = app.test_client().post(PATIENT_VIEW, json=request)
    assert answer.status_code == 422 and answer.get_json()["resourceType"] == "OperationOutcome"
    (record,) = records_of(app)
    assert (record["channel"], record["status"], record["risk"]) == ("cds", "not-assessed", "none")
    assert record["output_ids"] == [] and any(i.startswith("Observation/") for i in record["input_ids"])


@pytest.mark.parametrize(
    "route", ["/fhir/Questionnaire/$populate", "/fhir/Questionnaire/neckcheck-screen/$populate"]
)
def test_populate_is_audited_with_the_response_it_answered(
    make_app: Callable[..., Flask], route: str
) -> None:
    app = make_app()
    bundle = json.loads(body("S5-observations.json"))
    request = {"resourceType": "Parameters", "parameter": [{"name": "bundle", "resource": bundle}]}
    answer = app.test_client().post(route, json=request, content_type="application/fhir+json")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    (response,) = [p["resource"] for p in answer.get_json()["parameter"] if p["name"] == "response"]
    (record,) = records_of(app)
    assert (record["channel"], record["caller"], record["status"]) == ("sdc", "dev", "preliminary")
    assert record["output_ids"] == [response["identifier"]["value"]]
    assert record["input_ids"] == [f"Observation/{e['resource']['id']}" for e in bundle["entry"]]


def test_assess_with_parameters_names_the_bundles_resources(make_app: Callable[..., Flask]) -> None:
    """The Parameters form's record names the resources of its ``bundle`` part, as the Bundle form's does."""
    app = make_app()
    bundle = json.loads(body("S7-observations.json"))
    request = {"resourceType": "Parameters", "parameter": [{"name": "bundle", "resource": bundle}]}
    answer = app.test_client().post("/fhir/$assess", json=request, content_type="application/fhir+json")
    assert answer.status_code == 200
    (record,) = records_of(app)
    assert record["input_ids"] == [f"Observation/{e['resource']['id']}" for e in bundle["entry"]]
