"""Rule tables carry their lifecycle, are validated at load, and sit side by side by version (issue 24).

The loader refuses a lifecycle that makes no sense (an active table nobody endorsed, a retired one with no
end, an approval after it took effect), the published JSON Schema describes every packaged table, and the
service's default is the newest active table in effect: two active tables in effect on one day refuse to
start, in one line naming both.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from service.assess import Assessor
from service.errors import ConfigError
from service.rules.table import RULES_DIR, TABLE_SCHEMA, load_table
from service.rules.versions import catalogue, default_table_file, resolve, table_files
from tests.support import bundle_of, observation

NEWEST = RULES_DIR / "neckcheck-escalation-1.1.0.json"
RETIRED = RULES_DIR / "neckcheck-escalation-1.0.0.json"
# 1.1.0's lifecycle as FHIR publishes it; the people are roles (no person is named in the packaged tables)
METADATA = {
    "approvalDate": "2026-12-03",
    "lastReviewDate": "2026-12-03",
    "effectivePeriod": {"start": "2026-12-03"},
    "author": [{"name": "neckcheck clinical lead"}],
    "reviewer": [{"name": "neckcheck clinical safety officer"}],
    "endorser": [{"name": "neckcheck clinical governance committee"}],
}


def raw_table(path: Path = NEWEST) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write(folder: Path, raw: dict[str, Any], name: str | None = None) -> Path:
    path = folder / (name or f"{raw['id']}-{raw['version']}.json")
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_two_versions_sit_side_by_side_and_the_active_one_runs_by_default() -> None:
    assert [p.name for p in table_files()] == [RETIRED.name, NEWEST.name]
    assert [(t.version, t.status) for t in catalogue().tables] == [("1.0.0", "retired"), ("1.1.0", "active")]
    assert default_table_file() == NEWEST
    assert Assessor.load().table.version == "1.1.0"


def test_every_packaged_table_matches_the_published_schema() -> None:
    schema = json.loads(TABLE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    for path in table_files():
        jsonschema.Draft7Validator(schema).validate(raw_table(path))


def test_the_lifecycle_is_loaded_as_fhir_metadata_with_role_placeholders() -> None:
    life = load_table(NEWEST).lifecycle
    assert life.metadata() == METADATA
    assert load_table(RETIRED).lifecycle.effective_end == "2026-12-02"


def _broken(change: Any) -> dict[str, Any]:
    raw = raw_table()
    change(raw)
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(status="published"), r"status 'published' not in"),
        (lambda r: r.pop("endorser"), "an active table needs a endorser"),
        (lambda r: r.pop("approvalDate"), "an active table needs approvalDate"),
        (lambda r: r.update(status="retired"), "a retired table needs effectivePeriod.end"),
        (
            lambda r: r.update(approvalDate="2026-12-04"),
            "effectivePeriod.start 2026-12-03 is before approvalDate",
        ),
        (lambda r: r.update(lastReviewDate="2026-02-30"), "lastReviewDate '2026-02-30' is not a day"),
        (
            lambda r: r.update(effectivePeriod={"start": "2026-12-03", "end": "2026-12-01"}),
            "effectivePeriod.end 2026-12-01 is before effectivePeriod.start",
        ),
        (lambda r: r.update(author=[]), "author: name at least one"),
        (lambda r: r["facts"][0].update(lookback=None), "lookback null .* only in a retired table"),
        (lambda r: r.update(aprovalDate="2026-12-03"), r"must not contain \{'aprovalDate'\} properties"),
        (lambda r: r["changeLog"].insert(0, dict(r["changeLog"][1])), "each version once, oldest first"),
    ],
    ids=[
        "status",
        "endorser",
        "approval",
        "retired-end",
        "approved-late",
        "no-such-day",
        "period-backwards",
        "no-author",
        "null-lookback-active",
        "misspelt-key",
        "change-log-twice",
    ],
)
def test_a_lifecycle_that_makes_no_sense_refuses_to_load(tmp_path: Path, change: Any, message: str) -> None:
    path = write(tmp_path, _broken(change), "table.json")
    with pytest.raises(ConfigError, match=message):
        load_table(path)


def test_a_draft_needs_no_approval(tmp_path: Path) -> None:
    raw = raw_table()
    for key in ("approvalDate", "lastReviewDate", "effectivePeriod", "reviewer", "endorser"):
        raw.pop(key)
    raw["status"] = "draft"
    assert load_table(write(tmp_path, raw, "draft.json")).status == "draft"


def _version(raw: dict[str, Any], version: str, start: str, end: str | None = None) -> dict[str, Any]:
    out = json.loads(json.dumps(raw))
    out["version"] = version
    out["date"] = out["approvalDate"] = out["lastReviewDate"] = start
    out["effectivePeriod"] = {"start": start, **({"end": end} if end else {})}
    out["changeLog"].append({"version": version, "date": start, "change": "test"})
    return out


def test_two_active_tables_with_overlapping_periods_refuse_to_start_in_one_line(tmp_path: Path) -> None:
    write(tmp_path, raw_table())  # 1.1.0, from 2026-12-03, open
    write(tmp_path, _version(raw_table(), "1.2.0", "2027-01-01"))
    with pytest.raises(ConfigError) as refused:
        default_table_file(tmp_path)
    message = str(refused.value)
    assert "\n" not in message
    assert "1.1.0 (2026-12-03 to open) and 1.2.0 (2027-01-01 to open)" in message
    assert "overlapping effectivePeriod" in message


def test_the_newest_active_table_in_effect_runs(tmp_path: Path) -> None:
    old = raw_table()
    old["effectivePeriod"]["end"] = "2026-12-31"
    write(tmp_path, old)
    write(tmp_path, _version(raw_table(), "1.2.0", "2027-01-01"))
    write(tmp_path, _version(raw_table(), "1.3.0", "2027-02-01") | {"status": "draft"})
    assert default_table_file(tmp_path, dt.date(2026, 12, 31)).name.endswith("1.1.0.json")
    assert default_table_file(tmp_path, dt.date(2027, 6, 1)).name.endswith("1.2.0.json")
    with pytest.raises(ConfigError, match=r"no active rule table .* in effect on 2026-01-01"):
        default_table_file(tmp_path, dt.date(2026, 1, 1))


def test_a_file_named_for_another_version_refuses(tmp_path: Path) -> None:
    write(tmp_path, raw_table(), "neckcheck-escalation-1.2.0.json")
    with pytest.raises(ConfigError, match=r"holds neckcheck-escalation 1\.1\.0; name it after them"):
        catalogue(tmp_path)


def test_a_table_is_named_by_file_or_by_version() -> None:
    assert resolve("1.0.0") == RETIRED
    assert resolve(str(NEWEST)) == NEWEST
    with pytest.raises(
        ConfigError, match=r"9.9.9: neither a rule table file nor a packaged version \(1.0.0, 1.1.0\)"
    ):
        resolve("9.9.9")


def test_the_retired_table_runs_as_it_ran_no_reading_is_stale_and_a_duration_is_as_recorded() -> None:
    """1.0.0 predates lookbacks (contract 1.0.0): a month-old urgent sign still counts, and a duration
    recorded a month ago is taken as recorded (1.1.0 would call both stale)."""
    month_ago = "2026-02-08T09:00:00Z"
    bundle = bundle_of(
        observation("facial-numbness", True, when=month_ago),
        observation("facial-numbness-days", 10, when=month_ago),
        observation("weakness", True, when=month_ago),
    )
    as_of = dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)
    retired = Assessor.load(RETIRED).run(bundle, as_of=as_of)
    assert [r.id for r in retired.rules_fired] == ["urgent-signs"]
    assert {f.fact: f.value for f in retired.findings}["facial-numbness-days"] == 10
    assert retired.stale_facts == ()
    current = Assessor.load(NEWEST).run(bundle, as_of=as_of)
    assert current.rules_fired == () and set(current.stale_facts) >= {"weakness", "facial-numbness-days"}
