"""The documentation's command for running the Library in the reference engine (docs/integration/cql.md) is
the test harness's, and works."""

from __future__ import annotations

import json
import re
import subprocess

from service.cql.library import elm_file
from service.cql.npm import ROOT
from service.rules.table import load_table
from tests.cql.engine import EVALUATE, node_ready

PAGE = (ROOT / "docs" / "integration" / "cql.md").read_text(encoding="utf-8")


def _example() -> str:
    (block,) = [b for b in re.findall(r"```sh\n(.*?)\n```", PAGE, re.S) if "cql/evaluate.cjs" in b]
    return block


def test_the_page_runs_what_the_harness_runs() -> None:
    """tests/cql/engine.py runs ``TZ=UTC node cql/evaluate.cjs <ELM>`` with JSON lines on stdin."""
    elm = elm_file(load_table().version, ROOT / "schemas" / "cql").relative_to(ROOT)
    harness = f"TZ=UTC node {EVALUATE.relative_to(ROOT)} {elm}"
    assert _example().splitlines()[-1] == harness


def test_the_page_example_prints_what_it_says() -> None:
    node_ready()
    done = subprocess.run(["bash", "-c", _example()], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = re.search(r"It prints `(.*?)`, what", PAGE, re.S)
    assert printed is not None
    assert json.loads(done.stdout) == json.loads(printed.group(1).replace("\n", ""))
