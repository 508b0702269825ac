"""The rule tables side by side: which versions exist, which one the service runs, each one by version.

``schemas/rules/`` holds one file per version, named ``<id>-<version>.json``. The service runs the table
``NECKCHECK_RULES_FILE`` names; without it, the newest ``active`` version in effect today. Two active
versions whose effective periods overlap would leave "the" table to chance, so that refuses to start, in
one line naming both. The table is chosen once, at start-up: an explicit ``asOf`` moves the evaluation
time, never the table (a question about last month is asked of today's rules).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from service.errors import ConfigError
from service.rules.table import RULES_DIR, RuleTable, load_table, version_key

TABLE_FILE = re.compile(r"[a-z0-9-]+-[0-9]+\.[0-9]+\.[0-9]+\.json")


@dataclass(frozen=True)
class Catalogue:
    """Every rule table of a folder, oldest version first, each with its file."""

    entries: tuple[tuple[Path, RuleTable], ...]

    @property
    def tables(self) -> tuple[RuleTable, ...]:
        return tuple(table for _, table in self.entries)

    def file(self, version: str) -> Path | None:
        return next((path for path, table in self.entries if table.version == version), None)

    def newest_in_effect(self, day: dt.date) -> Path | None:
        """The file of the newest active version whose effective period holds ``day``."""
        live = [
            (t.version_key, p) for p, t in self.entries if t.status == "active" and t.lifecycle.in_effect(day)
        ]
        return max(live)[1] if live else None


def table_files(directory: Path = RULES_DIR) -> list[Path]:
    return sorted(p for p in directory.iterdir() if TABLE_FILE.fullmatch(p.name))


@cache
def catalogue(directory: Path = RULES_DIR) -> Catalogue:
    """Each table loaded and validated; a file named for another version, two files of one version, or two
    active versions in effect on the same day stop the start."""
    entries: list[tuple[Path, RuleTable]] = []
    for path in table_files(directory):
        table = load_table(path)
        if path.name != f"{table.id}-{table.version}.json":
            raise ConfigError(f"rule table {path}: holds {table.id} {table.version}; name it after them")
        entries.append((path, table))
    versions = [t.version for _, t in entries]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"rule tables under {directory}: a version appears twice ({', '.join(versions)})")
    entries.sort(key=lambda entry: entry[1].version_key)
    check_overlaps([t for _, t in entries])
    return Catalogue(tuple(entries))


def check_overlaps(tables: list[RuleTable]) -> None:
    """Refuse two active tables in effect on a common day (an open end runs forever)."""
    active = [t for t in tables if t.status == "active"]
    for i, first in enumerate(active):
        for second in active[i + 1 :]:
            if _overlap(first, second):
                raise ConfigError(
                    f"rule tables {first.id} {first.version} ({_period(first)}) and {second.version} "
                    f"({_period(second)}) are both active with overlapping effectivePeriod: retire one, "
                    "or end one's period before the other's starts"
                )


def _overlap(a: RuleTable, b: RuleTable) -> bool:
    far_past, far_future = "0000-01-01", "9999-12-31"
    a_start, a_end = a.lifecycle.effective_start or far_past, a.lifecycle.effective_end or far_future
    b_start, b_end = b.lifecycle.effective_start or far_past, b.lifecycle.effective_end or far_future
    return a_start <= b_end and b_start <= a_end


def _period(table: RuleTable) -> str:
    return table.lifecycle.period


def default_table_file(directory: Path = RULES_DIR, today: dt.date | None = None) -> Path:
    """The table the service runs when ``NECKCHECK_RULES_FILE`` names none."""
    day = today or dt.datetime.now(dt.UTC).date()
    found = catalogue(directory).newest_in_effect(day)
    if found is None:
        raise ConfigError(
            f"no active rule table under {directory} is in effect on {day.isoformat()}: "
            "name one with NECKCHECK_RULES_FILE"
        )
    return found


def resolve(name: str, directory: Path = RULES_DIR) -> Path:
    """A rule table named on the command line: a file, or a version under ``directory``."""
    path = Path(name)
    if path.is_file():
        return path
    found = catalogue(directory).file(name) if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", name) else None
    if found is None:
        known = ", ".join(t.version for t in catalogue(directory).tables)
        raise ConfigError(f"{name}: neither a rule table file nor a packaged version ({known})")
    return found


def published(running: RuleTable, directory: Path = RULES_DIR) -> dict[str, RuleTable]:
    """The versions the service publishes: every packaged one, and the one it runs (which stands for its
    version when ``NECKCHECK_RULES_FILE`` names another file of that version). Newest first."""
    tables = {t.version: t for t in catalogue(directory).tables if t.id == running.id}
    tables[running.version] = running
    return dict(sorted(tables.items(), key=lambda item: version_key(item[0]), reverse=True))
