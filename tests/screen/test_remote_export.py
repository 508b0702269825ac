"""``neckcheck screen https://.../fhir/Group/<id>``: the population exported from a real FHIR server (SEKMET,
with Bulk Data $export and SMART Backend Services) and screened as the same data from files would be.

The server sits behind tests/screen/fault_proxy.py, which passes everything on unless a test gives it a
rule: the faults (a 429, a cut-off body, a held job) are the proxy's, the export is the server's.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.screen.ehr import GROUP, NARROW, TOKEN_SECONDS, Ehr, load, only, running_ehr
from tests.screen.fault_proxy import Exchange, Forward, Reply
from tests.screen.support import AS_OF, INTERRUPTIBLE, ROOT, results, screen

FILES = "/bulk-files/"
STATUS = "/bulk-status/"


@pytest.fixture(scope="module")
def ehr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ehr]:
    with running_ehr(tmp_path_factory.mktemp("ehr"), 60) as ehr:
        yield ehr


@pytest.fixture(autouse=True)
def clean_proxy(ehr: Ehr) -> Iterator[None]:
    ehr.proxy.reset()
    yield
    ehr.proxy.reset()


@pytest.fixture(scope="module")
def from_files(ehr: Ehr, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same data screened from files: the whole population, and the Group's members only."""
    folder = tmp_path_factory.mktemp("from-files")
    group = only(ehr.files, set(ehr.group), folder / "group-files")
    outs = {"all": folder / "all", "group": folder / "group"}
    assert screen(ehr.files, outs["all"], "--as-of", AS_OF, "--workers", "1") == 0
    assert screen(group, outs["group"], "--as-of", AS_OF, "--workers", "1") == 0
    return outs


def remote(ehr: Ehr, path: str, out: Path, *args: str, key: str = "pem") -> int:
    return screen(f"{ehr.url}{path}", out, "--as-of", AS_OF, "--workers", "1", *ehr.client_args(key), *args)


def test_a_group_export_screens_to_the_results_of_the_same_data_from_files(
    ehr: Ehr, from_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert remote(ehr, f"/Group/{GROUP}", out) == 0
    assert results(out) == results(from_files["group"])
    assert len(results(out)) > 10
    (kickoff,) = ehr.proxy.exchanges("GET", rf"/Group/{GROUP}/\$export$")
    assert kickoff.header("prefer") == "respond-async, handling=strict"
    assert kickoff.query["_type"] == ["Encounter,Observation,Patient,QuestionnaireResponse,ServiceRequest"]
    assert kickoff.query["_typeFilter"][0].startswith("Observation?code=")  # SEKMET supports it
    assert (kickoff.header("authorization") or "").startswith("Bearer ")
    files = ehr.proxy.exchanges("GET", FILES)
    assert files and all(f.status == 200 and f.header("authorization") for f in files)  # requiresAccessToken
    assert [e.status for e in ehr.proxy.exchanges("DELETE", STATUS)] == [202]  # the server may drop its files
    assert not (out / ".export").exists()  # deleted after success without --keep-export


def test_all_patients_with_an_es384_jwk_key_and_the_export_kept(
    ehr: Ehr, from_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert remote(ehr, "/Patient", out, "--keep-export", key="jwk") == 0
    assert results(out) == results(from_files["all"])
    manifest = json.loads((out / ".export" / "manifest.json").read_text())
    assert {o["type"] for o in manifest["output"]} == {
        "Encounter",
        "Observation",
        "Patient",
        "QuestionnaireResponse",
        "ServiceRequest",
    }
    assert all((out / ".export" / o["url"]).is_file() for o in manifest["output"])
    (token,) = ehr.proxy.exchanges("POST", "/auth/token")
    assert "client_assertion" in token.body.decode()


def test_a_system_export_since_a_time_holds_what_changed_since(
    ehr: Ehr, from_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    since = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    time.sleep(2)
    patient = next(p for p in ehr.group if p in results(from_files["all"]))
    load(ehr.server, only(ehr.files, {patient}, tmp_path / "one"))  # the same resources, stored again
    out = tmp_path / "out"
    assert remote(ehr, "", out, "--since", since.isoformat().replace("+00:00", "Z")) == 0
    (kickoff,) = ehr.proxy.exchanges("GET", r"/fhir/\$export$")
    assert kickoff.query["_since"] == [since.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert results(out) == {patient: results(from_files["all"])[patient]}
    # nothing changed since: said, not screened
    assert remote(ehr, "", tmp_path / "later", "--since", "2099-01-01T00:00:00Z") == 2
    assert "exported nothing to screen" in capsys.readouterr().err


def test_what_the_server_does_not_offer_is_said_in_one_line(
    ehr: Ehr, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_group_export(exchange: Exchange, forward: Forward) -> Reply | None:
        if not exchange.path.endswith("/metadata"):
            return None
        answer = forward(exchange)
        statement = json.loads(answer.body)
        for resource in statement["rest"][0]["resource"]:
            if resource["type"] == "Group":
                resource.pop("operation", None)
        return Reply(200, answer.headers, json.dumps(statement).encode())

    ehr.proxy.rules.append(no_group_export)
    assert remote(ehr, f"/Group/{GROUP}", tmp_path / "a") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neckcheck: ") and "\n" not in err
    assert "does not offer Group-level $export" in err
    assert not ehr.proxy.exchanges("GET", r"\$export")  # nothing asked of a server that does not offer it

    # a client the server granted Observations only: screening would miss the rest, so it is not run
    key = str(ehr.keys.rsa_pem)
    args = ["--client-id", NARROW, "--key", key, "--kid", "rsa-1", "--as-of", AS_OF]
    assert screen(f"{ehr.url}/Patient", tmp_path / "b", *args) == 2
    err = capsys.readouterr().err
    assert "does not let neckcheck read Encounter, Patient, QuestionnaireResponse, ServiceRequest" in err
    asked = ehr.proxy.exchanges("POST", "/auth/token")[-1]
    assert parse_qs(asked.body.decode())["scope"] == [  # the default: read and search of each type screened
        "system/Encounter.rs system/Observation.rs system/Patient.rs system/QuestionnaireResponse.rs "
        "system/ServiceRequest.rs"
    ]

    # a token endpoint that does not take signed assertions
    def no_private_key_jwt(exchange: Exchange, forward: Forward) -> Reply | None:
        if not exchange.path.endswith("/smart-configuration"):
            return None
        answer = forward(exchange)
        config = json.loads(answer.body)
        config["token_endpoint_auth_methods_supported"] = ["client_secret_basic"]
        return Reply(200, answer.headers, json.dumps(config).encode())

    ehr.proxy.reset()
    ehr.proxy.rules.append(no_private_key_jwt)
    assert remote(ehr, "/Patient", tmp_path / "d") == 2
    err = capsys.readouterr().err
    assert (
        "does not offer private_key_jwt (token_endpoint_auth_methods_supported: client_secret_basic)" in err
    )
    assert not ehr.proxy.exchanges("POST", "/auth/token")

    # no such Group: the server's own words
    ehr.proxy.reset()
    assert remote(ehr, "/Group/no-such-group", tmp_path / "c") == 2
    assert "Group/no-such-group not found" in capsys.readouterr().err


def test_an_expired_token_mid_download_is_replaced_and_the_download_continues(
    ehr: Ehr, from_files: dict[str, Path], tmp_path: Path
) -> None:
    held = []

    def token_said_to_last_an_hour(exchange: Exchange, forward: Forward) -> Reply | None:
        if exchange.path != "/auth/token":
            return None
        answer = forward(exchange)
        token = json.loads(answer.body)
        token["expires_in"] = 3600  # so the client keeps it past the server's 30 s
        return Reply(answer.status, answer.headers, json.dumps(token).encode())

    def first_file_arrives_late(exchange: Exchange, forward: Forward) -> Reply | None:
        if FILES in exchange.path and not held:
            held.append(exchange.path)
            time.sleep(TOKEN_SECONDS + 1)  # the token expires on the way
        return None

    ehr.proxy.rules += [token_said_to_last_an_hour, first_file_arrives_late]
    out = tmp_path / "out"
    assert remote(ehr, f"/Group/{GROUP}", out) == 0
    first = ehr.proxy.exchanges("GET", held[0])
    assert [e.status for e in first] == [401, 200]  # refused by the server as expired, then fetched
    assert len(ehr.proxy.exchanges("POST", "/auth/token")) == 2
    assert results(out) == results(from_files["group"])


def test_429_and_503_with_retry_after_are_waited_out(
    ehr: Ehr, from_files: dict[str, Path], tmp_path: Path
) -> None:
    busy: list[str] = []

    def busy_once(exchange: Exchange, forward: Forward) -> Reply | None:
        for part, status, wait in ((STATUS, 429, "2"), (FILES, 503, "1")):
            if part in exchange.path and part not in busy:
                busy.append(part)
                return Reply(status, {"Retry-After": wait})
        return None

    ehr.proxy.rules.append(busy_once)
    out = tmp_path / "out"
    assert remote(ehr, f"/Group/{GROUP}", out) == 0
    polls = ehr.proxy.exchanges("GET", STATUS)
    assert polls[0].status == 429 and polls[1].at - polls[0].at >= 2.0
    files = ehr.proxy.exchanges("GET", FILES)
    assert files[0].status == 503 and files[1].path == files[0].path and files[1].at - files[0].at >= 1.0
    assert results(out) == results(from_files["group"])


def test_a_failed_job_stops_the_run_with_the_servers_words(
    ehr: Ehr, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreadable_filter(exchange: Exchange, forward: Forward) -> Reply | None:
        if exchange.path.endswith("/$export"):
            exchange.query["_typeFilter"] = ["Observation?date=not-a-date"]  # SEKMET's job fails on it
        return None

    ehr.proxy.rules.append(unreadable_filter)
    assert remote(ehr, f"/Group/{GROUP}", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("neckcheck: the export failed (500: ")
    assert not (tmp_path / "out" / "results.ndjson").exists()


def held(exchange: Exchange, forward: Forward) -> Reply | None:
    """The job still running, as far as the client can tell (the server finished it long ago)."""
    if STATUS in exchange.path and exchange.method == "GET":
        return Reply(202, {"X-Progress": "held by the test", "Retry-After": "1"})
    return None


def test_ctrl_c_while_the_server_exports_cancels_the_job(ehr: Ehr, tmp_path: Path) -> None:
    ehr.proxy.rules.append(held)
    command = [*INTERRUPTIBLE, "screen", f"{ehr.url}/Group/{GROUP}", "--out", str(tmp_path / "out")]
    command += ["--progress-every", "60", *ehr.client_args()]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ehr.proxy.exchanges("GET", STATUS):
        assert run.poll() is None, run.communicate()
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "the server says: held by the test" in err  # X-Progress on the progress output
    (cancel,) = ehr.proxy.exchanges("DELETE", STATUS)
    assert cancel.status == 202  # the real server cancelled the job
    ehr.proxy.reset()
    assert ehr.server.process.poll() is None


def test_an_interrupted_download_fetches_only_what_is_missing_with_a_byte_range(
    ehr: Ehr, from_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def cut_observations(exchange: Exchange, forward: Forward) -> Reply | None:
        if exchange.path.endswith("/Observation.ndjson"):
            answer = forward(exchange)
            return Reply(answer.status, answer.headers, answer.body, cut_after=1000)
        return None

    ehr.proxy.rules.append(cut_observations)
    out = tmp_path / "out"
    assert remote(ehr, f"/Group/{GROUP}", out) == 2  # cut every time: given up
    assert "the connection broke off" in capsys.readouterr().err
    assert (out / ".export" / "Observation.000.ndjson.part").stat().st_size == 1000
    recorded = json.loads((out / ".export" / "export.json").read_text())["files"]
    assert sorted(recorded) == [
        f"{t}.000.ndjson" for t in ("Encounter", "Patient", "QuestionnaireResponse", "ServiceRequest")
    ]
    ehr.proxy.reset()
    ehr.proxy.ranges = True  # the server (behind a caching proxy) now offers byte ranges
    assert remote(ehr, f"/Group/{GROUP}", out) == 0
    again = ehr.proxy.exchanges("GET", FILES)
    assert [(e.path.rsplit("/", 1)[1], e.header("range"), e.status) for e in again] == [
        ("Observation.ndjson", "bytes=1000-", 206)
    ]
    assert not ehr.proxy.exchanges("GET", r"\$export")  # the same job, from the recorded manifest
    assert results(out) == results(from_files["group"])


def test_a_server_that_refuses_type_filter_is_asked_again_without_it(
    ehr: Ehr, from_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_type_filter(exchange: Exchange, forward: Forward) -> Reply | None:
        if exchange.path.endswith("/$export") and "_typeFilter" in exchange.query:
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-supported", "diagnostics": "_typeFilter"}],
            }
            return Reply(400, {"Content-Type": "application/fhir+json"}, json.dumps(outcome).encode())
        return None

    ehr.proxy.rules.append(no_type_filter)  # as a server without _typeFilter answers handling=strict
    out = tmp_path / "out"
    assert remote(ehr, f"/Group/{GROUP}", out) == 0
    assert [e.status for e in ehr.proxy.exchanges("GET", r"\$export$")] == [400, 202]
    assert "the server refused _typeFilter (400: _typeFilter)" in capsys.readouterr().err
    assert results(out) == results(from_files["group"])  # every Observation, the same results


def test_the_deadline_stops_the_wait_and_cancels_the_job(
    ehr: Ehr, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ehr.proxy.rules.append(held)
    began = time.monotonic()
    assert remote(ehr, f"/Group/{GROUP}", tmp_path / "out", "--export-timeout", "3s") == 2
    assert time.monotonic() - began < 30
    assert "the export did not finish within --export-timeout" in capsys.readouterr().err
    assert [e.status for e in ehr.proxy.exchanges("DELETE", STATUS)] == [202]


def test_the_token_is_not_sent_to_a_file_on_another_server(
    ehr: Ehr, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def files_elsewhere(exchange: Exchange, forward: Forward) -> Reply | None:
        if STATUS not in exchange.path or exchange.method != "GET":
            return None
        answer = forward(exchange)
        if answer.status == 200:  # the manifest: its files said to be on localhost, another origin
            moved = answer.body.replace(b"http://127.0.0.1:", b"http://localhost:")
            return Reply(200, answer.headers, moved)
        return answer

    ehr.proxy.rules.append(files_elsewhere)
    assert remote(ehr, f"/Group/{GROUP}", tmp_path / "out") == 2
    assert "the access token is not sent to another server" in capsys.readouterr().err
    assert not ehr.proxy.exchanges("GET", FILES)


def test_a_token_is_renewed_before_it_expires_on_a_long_wait(
    ehr: Ehr, from_files: dict[str, Path], tmp_path: Path
) -> None:
    until = time.monotonic() + TOKEN_SECONDS + 2

    def running_a_while(exchange: Exchange, forward: Forward) -> Reply | None:
        return held(exchange, forward) if time.monotonic() < until else None

    ehr.proxy.rules.append(running_a_while)
    out = tmp_path / "out"
    assert remote(ehr, f"/Group/{GROUP}", out) == 0
    assert len(ehr.proxy.exchanges("POST", "/auth/token")) >= 2
    assert all(e.status != 401 for e in ehr.proxy.seen)  # asked again before the server refused it
    assert results(out) == results(from_files["group"])


def test_ctrl_c_while_downloading_keeps_the_job_and_the_files_downloaded_whole(
    ehr: Ehr, from_files: dict[str, Path], tmp_path: Path
) -> None:
    asked, release = threading.Event(), threading.Event()

    def patients_slow(exchange: Exchange, forward: Forward) -> Reply | None:
        if exchange.path.endswith("/Patient.ndjson"):
            asked.set()
            release.wait(60)
        return None

    ehr.proxy.rules.append(patients_slow)
    out = tmp_path / "out"
    command = [*INTERRUPTIBLE, "screen", f"{ehr.url}/Group/{GROUP}", "--out", str(out), "--as-of", AS_OF]
    run = subprocess.Popen([*command, *ehr.client_args()], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert asked.wait(60), run.communicate()
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    release.set()
    while not ehr.proxy.exchanges("GET", "/Patient.ndjson"):  # the held request, answered to no one
        time.sleep(0.05)
    assert run.returncode == 130, err
    assert not ehr.proxy.exchanges("DELETE", STATUS)  # the job stays: its files are still wanted
    recorded = json.loads((out / ".export" / "export.json").read_text())["files"]
    assert sorted(recorded) == ["Encounter.000.ndjson", "Observation.000.ndjson"]
    ehr.proxy.reset()
    assert remote(ehr, f"/Group/{GROUP}", out) == 0  # the same command
    fetched = sorted(e.path.rsplit("/", 1)[1] for e in ehr.proxy.exchanges("GET", FILES))
    assert fetched == ["Patient.ndjson", "QuestionnaireResponse.ndjson", "ServiceRequest.ndjson"]
    assert not ehr.proxy.exchanges("GET", r"\$export")
    assert results(out) == results(from_files["group"])


def test_the_servers_error_file_warnings_are_said_and_errors_stop_the_run(
    ehr: Ehr, from_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def lenient_with_an_unknown_parameter(exchange: Exchange, forward: Forward) -> Reply | None:
        if exchange.path.endswith("/$export"):  # SEKMET then exports, and warns in an error file
            exchange.headers["prefer"] = "respond-async"
            exchange.query["_elements"] = ["id"]
        return None

    ehr.proxy.rules.append(lenient_with_an_unknown_parameter)
    out = tmp_path / "out"
    assert remote(ehr, f"/Group/{GROUP}", out) == 0
    assert (
        "the server says of the export: Ignored unsupported parameters: ['_elements']"
        in capsys.readouterr().err
    )
    assert [e.path for e in ehr.proxy.exchanges("GET", FILES) if e.path.endswith("/errors.ndjson")]
    assert results(out) == results(from_files["group"])

    def as_errors(exchange: Exchange, forward: Forward) -> Reply | None:
        if not exchange.path.endswith("/errors.ndjson"):
            return None
        answer = forward(exchange)
        outcome = json.loads(answer.body)
        for issue in outcome["issue"]:
            issue["severity"] = "error"
        return Reply(200, answer.headers, json.dumps(outcome).encode() + b"\n")

    ehr.proxy.rules.insert(0, as_errors)
    assert remote(ehr, f"/Group/{GROUP}", tmp_path / "other") == 2
    err = capsys.readouterr().err
    assert "the server could not export everything (1 errors, the first: Ignored unsupported" in err
    assert not (tmp_path / "other" / "results.ndjson").exists()
