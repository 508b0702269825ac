"""The worked example of docs/rule-governance.md is real: its candidate script, run as written, gives the
table diff the page shows, and the impact run on the generated population gives the page's counts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.docs.pages import DOCS, blocks
from tests.live import ROOT

PAGE = DOCS / "rule-governance.md"
NECKCHECK = Path(sys.executable).with_name("neckcheck")


def test_the_worked_example_gives_what_the_page_shows(tmp_path: Path) -> None:
    shown = blocks(PAGE)
    (script,) = [b.text for b in shown if b.lang == "python"]
    packaged = str(ROOT / "schemas" / "rules" / "neckcheck-escalation-1.1.0.json")
    script = script.replace('"schemas/rules/neckcheck-escalation-1.1.0.json"', repr(packaged))
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, timeout=60)

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    outputs = [b.text for b in shown if b.lang == ""]  # the blocks that show what a command printed
    words = run(str(NECKCHECK), "rules", "diff", "1.1.0", "candidate.json")
    assert words == outputs[0].strip()

    export, impact = tmp_path / "export", tmp_path / "impact"
    generate = [sys.executable, "-m", "benchmarks.bulk_export", str(export), "--patients", "2000"]
    subprocess.run(generate, cwd=ROOT, check=True, timeout=300, capture_output=True)
    said = run(
        str(NECKCHECK), "rules", "diff", "1.1.0", "candidate.json", "--corpus", str(export),
        "--out", str(impact), "--as-of", "2026-03-10T09:00:00Z",
    )  # fmt: skip
    assert said == outputs[1].strip().replace("/tmp/impact/", f"{impact}/")
    data = json.loads((impact / "impact.json").read_text())
    page = PAGE.read_text(encoding="utf-8")
    for kind in ("risk", "orders", "rules"):
        for transition, count in data[kind].items():
            assert re.search(rf"\| {re.escape(transition)} \| {count:,} \|", page), (kind, transition, count)
    first = data["examples"]["risk: moderate -> low"][0]
    assert f"**{first['patient']}**" in page
