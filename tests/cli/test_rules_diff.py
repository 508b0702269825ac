"""``neckcheck rules diff``: a rule change's impact on a population, before it goes live (issue 24).

The export here is made by the test, patient by patient, so the test knows which patients a change must
move and how; the command must find exactly those (changes.ndjson), count them (impact.json) and say so
to a committee (impact.md, impact.png).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.cli import main
from service.rules.table import RULES_DIR
from tests.screen.support import AS_OF, read_ndjson
from tests.support import observation

TABLE = RULES_DIR / "neckcheck-escalation-1.1.0.json"
URGENT = ("vision-change", "slurred-speech", "weakness", "symptoms-worsening")
# patient -> (days of facial numbness, headache): the imaging rule fires with a headache
PATIENTS = {
    "d10": (10, False),
    "d14": (14, False),
    "d15": (15, False),
    "d17": (17, False),
    "d20": (20, False),
    "d21": (21, False),
    "d30": (30, False),
    "d17-headache": (17, True),
    "d30-headache": (30, True),
}


def facts_of(patient: str, days: int, headache: bool) -> list[dict[str, Any]]:
    given = {fact: False for fact in URGENT} | {"dizziness": False, "headache": headache}
    given |= {"facial-numbness": True, "facial-numbness-side": "both", "facial-numbness-days": days}
    return [
        observation(fact, value, rid=f"{patient}-{fact}", patient=patient, when=AS_OF)
        for fact, value in given.items()
    ]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    lines = [json.dumps(r) for p, (days, headache) in PATIENTS.items() for r in facts_of(p, days, headache)]
    lines.append(json.dumps(observation("neck-pain", True, rid="only-neck", patient="neck", when=AS_OF)))
    (folder / "Observation.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def edited(tmp_path: Path, change: Any) -> Path:
    raw = json.loads(TABLE.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "candidate.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def rule(raw: dict[str, Any], rid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in raw["rules"] if r["id"] == rid)
    return found


def diff(old: Path | str, new: Path, *args: str) -> int:
    return main(["rules", "diff", str(old), str(new), *args])


def test_a_moved_threshold_changes_exactly_the_patients_between_the_two(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """persistent-numbness after 20 days instead of 14: numbness of 15 to 20 days no longer fires it."""
    new = edited(
        tmp_path, lambda raw: rule(raw, "persistent-numbness")["when"]["all"][1].update(greaterThan=20)
    )
    out = tmp_path / "out"
    assert diff(TABLE, new, "--corpus", str(export), "--out", str(out), "--as-of", AS_OF) == 0
    must_change = {p for p, (days, _) in PATIENTS.items() if 14 < days <= 20}
    changes = {c["patient"]: c for c in read_ndjson(out / "changes.ndjson")}
    assert set(changes) == {f"Patient/{p}" for p in must_change}
    for patient, change in changes.items():
        assert set(change) == {"patient", "before", "after"}
        assert set(change["before"]) == set(change["after"]) == {"status", "risk", "rules", "orders"}
        assert "persistent-numbness" in change["before"]["rules"]
        assert "persistent-numbness" not in change["after"]["rules"]
        headache = PATIENTS[patient.removeprefix("Patient/")][1]
        # without the imaging rule, the referral goes with the rule; with it, the imaging rule still asks
        assert ("neurology-referral" in change["after"]["orders"]) is headache
    impact = json.loads((out / "impact.json").read_text())
    assert impact["patients"] == {"assessed": 10, "changed": 4, "unchanged": 6, "notCompared": 0}
    assert impact["rules"] == {"- persistent-numbness (no longer firing)": 4}
    assert impact["orders"] == {"- neurology-referral (routine)": 3}
    report = (out / "impact.md").read_text()
    assert "rule persistent-numbness: duration of the numbness more than 14 days -> " in report
    assert "duration of the numbness more than 20 days" in report
    assert "| Rules | - persistent-numbness (no longer firing) | 4 |" in report
    assert "Patient/d17" in report and "Evidence:" in report
    assert (out / "impact.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "4 of 10 patients change" in capsys.readouterr().out


def test_a_swapped_order_priority_moves_only_the_patients_whose_order_it_decides(
    export: Path, tmp_path: Path
) -> None:
    """persistent-numbness's referral urgent instead of routine: where the imaging rule already asks for
    an urgent referral, nothing moves; elsewhere the referral becomes urgent."""
    new = edited(
        tmp_path, lambda raw: rule(raw, "persistent-numbness")["orders"][0].update(priority="urgent")
    )
    out = tmp_path / "out"
    assert diff(TABLE, new, "--corpus", str(export), "--out", str(out), "--as-of", AS_OF) == 0
    must_change = {p for p, (days, headache) in PATIENTS.items() if days > 14 and not headache}
    changes = {c["patient"]: c for c in read_ndjson(out / "changes.ndjson")}
    assert set(changes) == {f"Patient/{p}" for p in must_change}
    for change in changes.values():
        assert change["before"]["orders"]["neurology-referral"] == "routine"
        assert change["after"]["orders"]["neurology-referral"] == "urgent"
        assert change["before"]["rules"] == change["after"]["rules"]
    impact = json.loads((out / "impact.json").read_text())
    assert impact["orders"] == {"neurology-referral routine -> urgent": len(must_change)}
    assert impact["rules"] == {} and impact["risk"] == {}
    assert (
        "rule persistent-numbness: neurology-referral priority routine -> urgent"
        in (out / "impact.md").read_text()
    )


def test_without_a_corpus_the_table_diff_is_printed_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(raw: dict[str, Any]) -> None:
        rule(raw, "urgent-signs")["risk"] = "moderate"
        rule(raw, "imaging-referral")["when"]["all"][1]["any"][0]["in"] = ["left"]
        raw["rules"].reverse()

    assert diff("1.1.0", edited(tmp_path, change)) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == "neckcheck-escalation 1.1.0 (active) -> neckcheck-escalation 1.1.0 (active)"
    assert "rule urgent-signs: risk high -> moderate" in said
    assert (
        "rule imaging-referral: side of the numbness is left or right -> side of the numbness is left" in said
    )
    assert any(line.startswith("rule order (first listed comes first): urgent-signs, ") for line in said)


def test_the_packaged_versions_are_compared_by_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "diff", "1.0.0", "1.1.0"]) == 0
    said = capsys.readouterr().out
    assert "fact weakness: lookback none (any reading counts) -> 24 h" in said
    assert "effectivePeriod 2026-11-28 to 2026-12-02 -> 2026-12-03 to open" in said


def test_rules_list_names_the_versions_and_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["1.0.0", "retired"]
    assert lines[1].split()[:2] == ["1.1.0", "active"] and lines[1].endswith("<- runs by default")


def test_an_unknown_table_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "diff", "1.0.0", "7.0.0"]) == 1
    assert "7.0.0: neither a rule table file nor a packaged version" in capsys.readouterr().err
