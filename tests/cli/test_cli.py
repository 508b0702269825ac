"""The CLI as a user runs it: the installed ``neckcheck`` script, in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli import main
from service.rules.table import RULES_DIR
from tests.scenarios import ASSESSED, EXPECTED, GOLDEN, SCENARIOS
from tests.support import bundle_of, observation, summary

NECKCHECK = Path(sys.executable).with_name("neckcheck")


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(NECKCHECK), *args], input=stdin, capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize("name", ASSESSED)
def test_every_scenario_through_the_cli(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """In-process (fast) for every scenario; the subprocess tests below check the installed script."""
    assert main(["evaluate", str(SCENARIOS / name)]) == 0
    out = capsys.readouterr().out
    assert summary(json.loads(out)) == EXPECTED[name]
    golden = json.loads((GOLDEN / name).read_text())
    assert json.loads(out) == golden


def test_evaluate_file_with_the_installed_script() -> None:
    done = run("evaluate", str(SCENARIOS / "S7-questionnaire.json"))
    assert done.returncode == 0, done.stderr
    assert summary(json.loads(done.stdout)) == EXPECTED["S7-questionnaire.json"]


def test_evaluate_stdin_with_as_of_and_transaction() -> None:
    data = (SCENARIOS / "S3-observations.json").read_bytes()
    done = run("evaluate", "-", "--as-of", "2026-04-01T00:00:00Z", "--output", "transaction", stdin=data)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["type"] == "transaction" and out["timestamp"] == "2026-04-01T00:00:00Z"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("S15-not-json.txt", "400: body is not JSON"),
        ("S14-two-patients.json", "422: one patient per request"),
    ],
)
def test_bad_input_prints_the_outcome_and_exits_2(name: str, reason: str) -> None:
    done = run("evaluate", str(SCENARIOS / name))
    assert done.returncode == 2
    assert json.loads(done.stdout)["resourceType"] == "OperationOutcome"
    assert done.stderr.decode().startswith(f"neckcheck: {reason}")
    assert len(done.stderr.decode().strip().splitlines()) == 1


def test_missing_file_is_a_clear_error() -> None:
    done = run("evaluate", "/nonexistent/bundle.json")
    assert done.returncode == 2
    assert "cannot read /nonexistent/bundle.json" in done.stderr.decode()


def test_bad_as_of_is_a_clear_error() -> None:
    done = run("evaluate", str(SCENARIOS / "S1-observations.json"), "--as-of", "tomorrow")
    assert done.returncode == 2
    assert "--as-of" in done.stderr.decode()


def test_rules_prints_every_rule_from_the_table() -> None:
    done = run("rules")
    assert done.returncode == 0
    text = done.stdout.decode()
    for rule in ("urgent-signs", "imaging-referral", "persistent-numbness", "radiculopathy-pattern"):
        assert rule in text
    assert "facial-numbness-days > 14" in text


def test_input_that_is_not_fhir_json_exits_2_with_the_path() -> None:
    """FHIR JSON rules (R4 §2.6.2): a NUL in an id is refused, never echoed into the output."""
    done = run("evaluate", str(Path(__file__).parents[1] / "bad_inputs" / "obs-id-nul.json"))
    assert done.returncode == 2
    outcome = json.loads(done.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert ["Bundle.entry[0].resource.id"] in [i.get("expression") for i in outcome["issue"]]
    assert b"400" in done.stderr


def test_populate_prints_the_parameters_and_refuses_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["populate", str(SCENARIOS / "S5-questionnaire.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["resourceType"] == "Parameters"
    assert out["parameter"][0]["resource"]["status"] == "in-progress"
    assert main(["populate", str(SCENARIOS / "S15-not-a-bundle.json")]) == 2
    assert json.loads(capsys.readouterr().out)["resourceType"] == "OperationOutcome"


def test_populate_with_the_installed_script_reads_stdin() -> None:
    done = run(
        "populate",
        "-",
        "--as-of",
        "2026-03-10T09:00:00Z",
        stdin=(SCENARIOS / "S1-observations.json").read_bytes(),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["parameter"][0]["resource"]["authored"] == "2026-03-10T09:00:00Z"


def _with_the_reader_gone(*args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """``neckcheck ARGS | head``, with the reader gone before the first write: the pipe's read end is closed
    at once, long before the command has loaded its rules and written anything."""
    process = subprocess.Popen(
        [str(NECKCHECK), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read()
    return subprocess.CompletedProcess(process.args, process.wait(timeout=60), b"", stderr)


@pytest.mark.parametrize(
    "args",
    [
        ("evaluate", str(SCENARIOS / "S1-observations.json")),
        ("populate", str(SCENARIOS / "S5-observations.json")),
        ("rules",),
        ("audit", "--since", "2000-01-01"),
        ("feedback-report",),
    ],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(args: tuple[str, ...], tmp_path: Path) -> None:
    """As a Unix tool killed by SIGPIPE: no traceback, status 128 + 13 (what a shell shows for `cat`)."""
    database = f"sqlite:///{tmp_path / 'neckcheck.db'}"
    stored = run_with_env(["evaluate", "--audit", str(SCENARIOS / "S1-observations.json")], database)
    assert stored.returncode == 0, stored.stderr  # so that `audit` has a record to print
    done = _with_the_reader_gone(*args, NECKCHECK_DATABASE_URL=database)
    assert done.stderr == b""
    assert done.returncode == 128 + signal.SIGPIPE


def test_another_broken_pipe_is_still_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the reader of stdout going away is quiet; a pipe of the command's own breaking is an error."""

    def broken(args: object) -> int:
        raise BrokenPipeError("a worker's pipe")

    monkeypatch.setattr("service.cli._rules", broken)
    with pytest.raises(BrokenPipeError):
        main(["rules"])


def run_with_env(args: list[str], database: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "NECKCHECK_DATABASE_URL": database}
    return subprocess.run([str(NECKCHECK), *args], capture_output=True, timeout=60, env=env, check=False)


def test_commands_run_the_table_the_service_would(tmp_path: Path) -> None:
    """NECKCHECK_RULES_FILE names the table for evaluate and rules show as for the service: weakness
    recorded present 9 days before is stale under 1.1.0 (24 h window: preliminary, ask again) and counts
    under the retired 1.0.0, which has no lookbacks (high)."""
    retired = RULES_DIR / "neckcheck-escalation-1.0.0.json"
    old_weakness = observation("weakness", True, rid="w", when="2026-03-01T09:00:00Z")
    chart = tmp_path / "chart.json"
    chart.write_text(json.dumps(bundle_of(old_weakness, timestamp="2026-03-10T09:00:00Z")))
    env = {
        **os.environ,
        "NECKCHECK_RULES_FILE": str(retired),
        "NECKCHECK_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
    }

    def run(*args: str) -> str:
        done = subprocess.run([str(NECKCHECK), *args], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run("rules", "show").startswith("neckcheck-escalation 1.0.0")
    assert summary(json.loads(run("evaluate", str(chart))))["risk"] == "high"
    env.pop("NECKCHECK_RULES_FILE")
    assert run("rules", "show").startswith("neckcheck-escalation 1.1.0")
    assert summary(json.loads(run("evaluate", str(chart))))["status"] == "preliminary"
