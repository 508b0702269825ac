"""Every ``curl`` in the README and the documentation site, run as written against the service as
``make run`` starts it (gunicorn on 127.0.0.1), and its answer checked against what the page says of it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.debian import apt_install
from tests.docs.pages import README, Block, blocks, curl_examples, pages
from tests.live import ROOT, running
from tests.scenarios import EXPECTED
from tests.support import resources, summary

EXAMPLES = [block for page in pages() for block in curl_examples(page)]


def _guidance(out: dict[str, Any]) -> dict[str, Any]:
    (guidance,) = resources(out, "GuidanceResponse")
    return guidance


def _assess_s1(out: dict[str, Any]) -> None:
    """S1: final, moderate, neurology referral and MRI of the brain, both urgent (FHIR operations)."""
    assert summary(out) == EXPECTED["S1-observations.json"]
    assert _guidance(out)["status"] == "success"


def _preliminary_s5(out: dict[str, Any]) -> None:
    """S5: preliminary, low, no orders; the GuidanceResponse asks the four urgent signs (SDC, step 1)."""
    assert summary(out) == EXPECTED["S5-observations.json"]
    guidance = _guidance(out)
    assert guidance["status"] == "data-required" and len(guidance["dataRequirement"]) == 4
    (ra,) = resources(out, "RiskAssessment")
    assert "vision change, slurred speech, weakness and worsening were not assessed" in ra["note"][0]["text"]


def _populate_loop(out: dict[str, Any]) -> None:
    """S5 with the four questions answered no: final, still low with no orders (SDC, step 2)."""
    assert summary(out) == {"status": "final", "risk": "low", "orders": []}
    assert _guidance(out)["status"] == "success"
    (ra,) = resources(out, "RiskAssessment")
    assert ra["prediction"][0]["rationale"].startswith("No escalation rule fired. Re-assess if numbness")


def _stale_card(out: dict[str, Any]) -> None:
    """S7 recorded 2026-03-10, assessed at today's clock: every reading is stale, so it asks again."""
    (card,) = out["cards"]
    assert card["indicator"] == "warning" and card["summary"].startswith("Preliminary")
    assert "Weakness was recorded present on 2026-03-10: ask again." in card["detail"]


def _critical_card(out: dict[str, Any]) -> None:
    """S7 recorded a minute ago: the critical card, urgent evaluation stat, three suggestions."""
    (card,) = out["cards"]
    assert card["indicator"] == "critical"
    labels = [s["label"] for s in card["suggestions"]]
    assert len(labels) == 3 and "Urgent in-person evaluation" in labels[0] and "(stat)" in labels[0]


def _discovery(out: dict[str, Any]) -> None:
    services = {s["id"]: s for s in out["services"]}
    assert {i: s["hook"] for i, s in services.items()} == {
        "neckcheck-patient-view": "patient-view",
        "neckcheck-order-sign": "order-sign",
    }
    assert all("neckcheck-smart-app" in s["extension"] for s in services.values())


def _ready(out: dict[str, Any]) -> None:
    """/readyz as the monitoring page shows it."""
    assert out == {
        "rules": "neckcheck-escalation 1.1.0",
        "spoolBytes": 0,
        "spoolMaxBytes": 536870912,
        "status": "ready",
    }


def _retired_plan(out: dict[str, Any]) -> None:
    """The PlanDefinition of the retired 1.0.0, read by version (Rule governance)."""
    assert (out["resourceType"], out["version"], out["status"]) == ("PlanDefinition", "1.0.0", "retired")
    assert out["effectivePeriod"]["end"]


def _old_questionnaire(out: dict[str, Any]) -> None:
    """1.0.0's Questionnaire: no recency window on any item (Rule governance)."""
    assert (out["resourceType"], out["version"]) == ("Questionnaire", "1.0.0")
    assert "observationLinkPeriod" not in json.dumps(out)


# What each example is, told from its first line (what it calls first) and the input it sends, and what its
# answer must be. An example that matches none, or several, fails: a new curl comes with its check here.
ASSESS = "/fhir/$assess"
CHECKS: list[tuple[str, Callable[[str, str], bool], Callable[[dict[str, Any]], None]]] = [
    ("populate-loop", lambda first, _: "/$populate" in first, _populate_loop),
    ("assess-S1", lambda first, c: first.endswith(ASSESS) and "S1-observations" in c, _assess_s1),
    ("assess-S5", lambda first, c: first.endswith(ASSESS) and "S5-observations" in c, _preliminary_s5),
    ("card-recorded-now", lambda first, c: first.startswith("sed ") and "patient-view" in c, _critical_card),
    ("card-stale", lambda first, _: first.endswith("/cds-services/neckcheck-patient-view"), _stale_card),
    ("discovery", lambda first, _: first.endswith("/cds-services"), _discovery),
    ("readyz", lambda first, _: first.endswith("/readyz"), _ready),
    (
        "plan-1.0.0",
        lambda first, _: "/PlanDefinition/neckcheck-escalation?version=1.0.0" in first,
        _retired_plan,
    ),
    (
        "questionnaire-1.0.0",
        lambda first, _: "/Questionnaire/neckcheck-screen?version=1.0.0" in first,
        _old_questionnaire,
    ),
]


def kind(block: Block) -> str:
    command = block.text.replace("\\$", "$")
    first = command.splitlines()[0].rstrip(" \\")
    matches = [name for name, matches, _ in CHECKS if matches(first, command)]
    assert len(matches) == 1, f"{block.where}: a curl example with {len(matches)} checks: {matches}"
    return matches[0]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running(tmp_path_factory.mktemp("docs")) as server:  # exactly the `make run` command
        yield server.url


@pytest.fixture(scope="module")
def curl() -> str:
    """The examples are curl commands: a clean Debian machine has no curl, so install it."""
    if shutil.which("curl") is None:
        apt_install("curl")
    found = shutil.which("curl")
    assert found, "apt-get installed curl but it is not on PATH"
    return found


@pytest.mark.parametrize("block", EXAMPLES, ids=[b.where for b in EXAMPLES])
def test_the_curl_examples_work_as_written(curl: str, base_url: str, block: Block) -> None:
    assert "http://127.0.0.1:8080/" in block.text, f"{block.where}: not the address `make run` serves on"
    command = block.text.replace("http://127.0.0.1:8080", base_url)
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    (check,) = [check for name, _, check in CHECKS if name == kind(block)]
    check(json.loads(done.stdout))


def test_every_check_is_used_and_every_page_with_a_curl_is_read() -> None:
    """No check left without its example (an example moved or removed), and no curl outside a run block."""
    assert sorted({kind(b) for b in EXAMPLES}) == sorted(name for name, _, _ in CHECKS)
    for page in pages():
        run = {b.line for b in curl_examples(page)}
        for block in blocks(page):
            if re.search(r"\bcurl ", block.text):
                assert block.line in run, f"{block.where}: a curl in a ```{block.lang} block is never run"


def test_the_readme_calls_assess_once_and_cds_hooks_once() -> None:
    assert [kind(b) for b in curl_examples(README)] == ["assess-S1", "card-recorded-now"]
