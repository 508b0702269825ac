"""The codes of schemas/codes.json (a copy of ../shared/clinical/codes.json), as lookups.

Intake accepts only codes listed here; output emits only codes listed here. Loaded once per process
(the file is immutable data) and validated against the rule table so a fact without a code cannot slip in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from service.errors import ConfigError
from service.packaged import SCHEMAS_DIR
from service.rules.table import RuleTable

DEFAULT_CODES = SCHEMAS_DIR / "codes.json"

Coding = dict[str, str]


@dataclass(frozen=True)
class CodeBook:
    raw: dict[str, Any]
    canonical_base: str
    fact_by_code: dict[tuple[str | None, str | None], str]
    side_by_code: dict[tuple[str | None, str | None], str]

    @property
    def local_fact_system(self) -> str:
        return str(self.raw["localFactSystem"])

    def fact_codings(self, fact: str) -> list[Coding]:
        """The codings of a fact, without codes.json's bookkeeping fields (status, evidence)."""
        return [_clean(c) for c in self.raw["facts"][fact]["codings"]]

    def fact_display(self, fact: str) -> str:
        """The fact's name for people: the display of its local code (a standard code's display may be a
        LOINC long name, "Pain severity - 0-10 verbal numeric rating [Score] - Reported")."""
        codings = self.raw["facts"][fact]["codings"]
        local = [c for c in codings if c["system"] == self.local_fact_system]
        return str((local or codings)[0]["display"])

    def order_display(self, key: str) -> str:
        """The order's name for people: the display of its first code, the one always emitted."""
        return self.order_codings(key)[0]["display"]

    def side_coding(self, side: str) -> Coding:
        return _clean(self.raw["laterality"][side])

    def order_codings(self, key: str) -> list[Coding]:
        """An order's codes, local first (codes.json: the local code is always emitted, any standard
        code listed with it follows; the generic referral code never stands alone)."""
        spec = self.raw["orders"][key]
        found = [spec.get("local") or spec["code"]]
        if spec.get("local"):
            found.append(spec["code"])
        if spec.get("standard"):
            found.append(spec["standard"])
        return [_clean(c) for c in found]

    def coding(self, *path: str) -> Coding:
        """A coding at ``path`` in codes.json, e.g. ``coding("categories", "imaging")``."""
        node: Any = self.raw
        for key in path:
            node = node[key]
        return _clean(node)

    def is_symptom_code(self, system: str | None, code: str | None) -> bool:
        symptom = self.raw["symptom"]
        return (system, code) == (symptom["system"], symptom["code"])

    def is_laterality_attribute(self, system: str | None, code: str | None) -> bool:
        attr = self.raw["laterality"]["attribute"]
        return (system, code) == (attr["system"], attr["code"])

    def yes_no(self, system: str | None, code: str | None) -> bool | None:
        yn = self.raw["yesNo"]
        if system != yn["system"]:
            return None
        return {yn["yes"]: True, yn["no"]: False}.get(code or "")

    def is_asked_unknown(self, system: str | None, code: str | None) -> bool:
        au = self.raw["askedUnknown"]
        return (system, code) == (au["system"], au["code"])

    def days_per_unit(self, system: str | None, code: str | None) -> float | None:
        units = self.raw["units"]
        if system != units["system"]:
            return None
        factor = units["toDays"].get(code or "")
        return float(factor) if factor is not None else None

    def canonical(self, resource_type: str, rid: str) -> str:
        return f"{self.canonical_base}/{resource_type}/{rid}"

    def identifier(self, kind: str, value: str) -> dict[str, str]:
        """A business identifier of ``kind`` (risk-assessment, service-request, ...) in neckcheck's system."""
        return {"system": f"{self.canonical_base}/identifier/{kind}", "value": value}


def _clean(coding: dict[str, Any]) -> Coding:
    return {k: coding[k] for k in ("system", "code", "display") if k in coding}


@cache
def load_codebook(path: Path = DEFAULT_CODES) -> CodeBook:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        fact_by_code = {
            (c["system"], c["code"]): name for name, f in raw["facts"].items() for c in f["codings"]
        }
        side_by_code = {
            (raw["laterality"][s]["system"], raw["laterality"][s]["code"]): s
            for s in ("left", "right", "both")
        }
        return CodeBook(raw, raw["canonicalBase"], fact_by_code, side_by_code)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"codes file {path}: {exc}") from exc


def check_against(codebook: CodeBook, table: RuleTable) -> None:
    """Refuse a rule table whose facts or orders have no codes, or of another rule set. Any version of the
    rule set will do (versions sit side by side, and one set of codes serves them): what must hold is that
    every fact and order the table names has its codes."""
    rule_set = codebook.raw["ruleSet"]
    if rule_set["id"] != table.id:
        raise ConfigError(f"codes are for rule set {rule_set['id']}, the rule table is {table.id}")
    missing = [f for f in table.facts if f not in codebook.raw["facts"]]
    missing += [o for o in table.orders if o not in codebook.raw["orders"]]
    if missing:
        raise ConfigError(f"no codes for {missing}")
