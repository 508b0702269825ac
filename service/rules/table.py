"""The versioned rule table: loaded from data, validated once at load, then immutable.

A broken table (unknown fact, empty ``all``, unknown order, bad risk) raises ``ConfigError`` at start-up
with a message naming the place, so a bad edit stops the service instead of misbehaving on a request.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from service.errors import ConfigError
from service.packaged import SCHEMAS_DIR

DEFAULT_TABLE = SCHEMAS_DIR / "rules" / "neckcheck-escalation-1.1.0.json"

FACT_KINDS = ("bool", "side", "days", "date", "score")
RISKS = ("negligible", "low", "moderate", "high")
PRIORITIES = ("routine", "urgent", "asap", "stat")  # FHIR request-priority, least to most urgent
CARDS = ("info", "warning", "critical")
SIDES = ("left", "right", "both")
# UCUM time units of a fixed length, for a lookback window ("mo" and "a" vary, so a window cannot use them)
LOOKBACK_UNITS = {"min": dt.timedelta(minutes=1), "h": dt.timedelta(hours=1), "d": dt.timedelta(days=1)}
LOOKBACK_UNITS["wk"] = 7 * LOOKBACK_UNITS["d"]


@dataclass(frozen=True)
class Lookback:
    """How old a reading of a fact may be and still speak for the patient now (rules.md §1, recency).

    A UCUM quantity as the table gives it (``24 h``, ``14 d``), published as such (a FHIR Duration).
    """

    value: int
    code: str  # UCUM

    @property
    def span(self) -> dt.timedelta:
        return self.value * LOOKBACK_UNITS[self.code]

    def __str__(self) -> str:
        return f"{self.value} {self.code}"


@dataclass(frozen=True)
class FactDef:
    name: str
    kind: str
    question: str
    label: str
    lookback: Lookback
    symptom: bool = False
    informational: bool = False
    input_only: bool = False
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Leaf:
    """A test on one fact: ``is present`` (bool), ``in`` a set of sides, or ``greaterThan`` days."""

    fact: str
    present: bool = False
    one_of: tuple[str, ...] = ()
    greater_than: int | None = None


@dataclass(frozen=True)
class Group:
    op: str  # "all" | "any"
    terms: tuple[Condition, ...]


Condition = Leaf | Group


@dataclass(frozen=True)
class OrderRef:
    order: str
    priority: str


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    when: Condition
    risk: str
    card: str
    orders: tuple[OrderRef, ...]
    outcome: str
    guideline: str


@dataclass(frozen=True)
class OrderDef:
    key: str
    title: str
    note: str | None = None


@dataclass(frozen=True)
class QuestionGroup:
    link_id: str
    text: str
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    version: str
    date: str
    change: str


@dataclass(frozen=True)
class RuleTable:
    id: str
    version: str
    date: str  # publication date of this version (its artefacts carry it, so output stays reproducible)
    change_log: tuple[Change, ...]  # oldest first; the last entry is this version
    title: str
    facts: dict[str, FactDef]
    groups: tuple[QuestionGroup, ...]
    orders: dict[str, OrderDef]
    rules: tuple[Rule, ...]
    no_rule_outcome: str
    no_rule_guideline: str
    to_rule_out: str
    windows: dict[str, dt.timedelta] = field(default_factory=dict)  # each fact's lookback, read per reading

    def __post_init__(self) -> None:
        self.windows.update({name: fact.lookback.span for name, fact in self.facts.items()})

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)


def risk_rank(risk: str) -> int:
    return RISKS.index(risk)


def priority_rank(priority: str) -> int:
    return PRIORITIES.index(priority)


@cache
def load_table(path: Path = DEFAULT_TABLE) -> RuleTable:
    """Read and validate a rule table file; cached because it is immutable data."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"rule table {path}: cannot read: {exc}") from exc
    try:
        return _table(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"rule table {path}: {exc}") from exc


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _table(raw: dict[str, Any]) -> RuleTable:
    facts = {f["name"]: _fact(f) for f in raw["facts"]}
    orders = {key: OrderDef(key, o["title"], o.get("note")) for key, o in raw["orders"].items()}
    rules = tuple(_rule(r, facts, orders) for r in raw["rules"])
    ids = [r.id for r in rules]
    _require(len(set(ids)) == len(ids), f"duplicate rule id in {ids}")
    groups = tuple(QuestionGroup(g["linkId"], g["text"], tuple(g["facts"])) for g in raw["groups"])
    grouped = [name for g in groups for name in g.facts]
    _require(sorted(grouped) == sorted(facts), "groups must list every fact exactly once")
    _require(bool(_DATE.fullmatch(str(raw["date"]))), f"date {raw['date']!r} is not YYYY-MM-DD")
    changes = tuple(Change(c["version"], c["date"], c["change"]) for c in raw["changeLog"])
    _require(
        bool(changes) and changes[-1].version == raw["version"] and changes[-1].date == raw["date"],
        f"changeLog must end with an entry for version {raw['version']} dated {raw['date']}",
    )
    return RuleTable(
        id=raw["id"],
        version=raw["version"],
        date=raw["date"],
        change_log=changes,
        title=raw["title"],
        facts=facts,
        groups=groups,
        orders=orders,
        rules=rules,
        no_rule_outcome=raw["noRule"]["outcome"],
        no_rule_guideline=raw["noRule"]["guideline"],
        to_rule_out=raw["toRuleOut"],
    )


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _fact(raw: dict[str, Any]) -> FactDef:
    _require(raw["kind"] in FACT_KINDS, f"fact {raw['name']}: kind {raw['kind']!r} not in {FACT_KINDS}")
    return FactDef(
        name=raw["name"],
        kind=raw["kind"],
        question=raw["question"],
        label=raw["label"],
        lookback=_lookback(raw.get("lookback"), f"fact {raw['name']}"),
        symptom=bool(raw.get("symptom", False)),
        informational=bool(raw.get("informational", False)),
        input_only=bool(raw.get("inputOnly", False)),
        minimum=raw.get("min"),
        maximum=raw.get("max"),
    )


def _lookback(raw: Any, where: str) -> Lookback:
    """Every fact has one: a reading without a window would count however old it is (rules.md §1)."""
    _require(isinstance(raw, dict), f"{where}: lookback is required, e.g. {{'value': 14, 'code': 'd'}}")
    value, code = raw.get("value"), raw.get("code")
    _require(
        type(value) is int and value > 0 and code in LOOKBACK_UNITS,
        f"{where}: lookback must be a positive whole number of {'/'.join(LOOKBACK_UNITS)} (UCUM): {raw!r}",
    )
    return Lookback(value, code)


def _rule(raw: dict[str, Any], facts: dict[str, FactDef], orders: dict[str, OrderDef]) -> Rule:
    rid = raw["id"]
    _require(raw["risk"] in RISKS, f"rule {rid}: risk {raw['risk']!r} not in {RISKS}")
    _require(raw["card"] in CARDS, f"rule {rid}: card {raw['card']!r} not in {CARDS}")
    refs = []
    for o in raw["orders"]:
        _require(o["order"] in orders, f"rule {rid}: unknown order {o['order']!r}")
        _require(o["priority"] in PRIORITIES, f"rule {rid}: priority {o['priority']!r} not in {PRIORITIES}")
        refs.append(OrderRef(o["order"], o["priority"]))
    return Rule(
        id=rid,
        title=raw["title"],
        when=_condition(raw["when"], facts, f"rule {rid}"),
        risk=raw["risk"],
        card=raw["card"],
        orders=tuple(refs),
        outcome=raw["outcome"],
        guideline=raw["guideline"],
    )


def _condition(raw: dict[str, Any], facts: dict[str, FactDef], where: str) -> Condition:
    for op in ("all", "any"):
        if op in raw:
            terms = raw[op]
            _require(isinstance(terms, list) and len(terms) > 0, f"{where}: empty {op!r}")
            return Group(op, tuple(_condition(t, facts, where) for t in terms))
    name = raw["fact"]
    _require(name in facts, f"{where}: unknown fact {name!r}")
    kind = facts[name].kind
    if "is" in raw:
        _require(
            kind == "bool" and raw["is"] == "present", f"{where}: 'is present' needs a bool fact ({name})"
        )
        return Leaf(name, present=True)
    if "in" in raw:
        sides = tuple(raw["in"])
        _require(kind == "side" and set(sides) <= set(SIDES), f"{where}: 'in' needs a side fact and sides")
        return Leaf(name, one_of=sides)
    if "greaterThan" in raw:
        _require(kind == "days" and isinstance(raw["greaterThan"], int), f"{where}: 'greaterThan' needs days")
        return Leaf(name, greater_than=raw["greaterThan"])
    raise ValueError(f"{where}: condition on {name} has no test (is / in / greaterThan)")
