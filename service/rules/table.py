"""The versioned rule table: loaded from data, validated once at load, then immutable.

A broken table (unknown fact, empty ``all``, unknown order, bad risk, a lifecycle out of order) raises
``ConfigError`` at start-up with a message naming the place, so a bad edit stops the service instead of
misbehaving on a request. The checks here say what a schema cannot (a rule names a fact that exists, the
change log ends with this version, an approved table names who endorsed it); then the published JSON Schema
(``schemas/rules/rule-table.schema.json``) refuses anything else, such as a misspelt key that would
otherwise be ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from service.errors import ConfigError
from service.packaged import SCHEMAS_DIR

RULES_DIR = SCHEMAS_DIR / "rules"
TABLE_SCHEMA = RULES_DIR / "rule-table.schema.json"
STATUSES = ("draft", "active", "retired")  # FHIR publication-status

FACT_KINDS = ("bool", "side", "days", "date", "score")
RISKS = ("negligible", "low", "moderate", "high")
PRIORITIES = ("routine", "urgent", "asap", "stat")  # FHIR request-priority, least to most urgent
CARDS = ("info", "warning", "critical")
SIDES = ("left", "right", "both")
# UCUM time units of a fixed length, for a lookback window ("mo" and "a" vary, so a window cannot use them)
LOOKBACK_UNITS = {"min": dt.timedelta(minutes=1), "h": dt.timedelta(hours=1), "d": dt.timedelta(days=1)}
LOOKBACK_UNITS["wk"] = 7 * LOOKBACK_UNITS["d"]


def __getattr__(name: str) -> Path:
    """``DEFAULT_TABLE``: the file of the table the service runs when ``NECKCHECK_RULES_FILE`` names none
    (the newest active version in effect, see versions.py), chosen when first asked for."""
    if name == "DEFAULT_TABLE":
        from service.rules.versions import default_table_file

        return default_table_file()
    raise AttributeError(name)


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
    lookback: Lookback | None  # None only in a retired table from before lookbacks: no window
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
class Lifecycle:
    """Where a version stands and who answers for it: FHIR's publishable metadata (R4 MetadataResource),
    published as such on the PlanDefinition and the Library. People are FHIR ContactDetails; the packaged
    tables name roles ("neckcheck clinical lead"), not persons, until a deployment names its own."""

    status: str  # draft | active | retired
    approval_date: str | None = None
    last_review_date: str | None = None
    effective_start: str | None = None
    effective_end: str | None = None  # None: open-ended
    author: tuple[dict[str, Any], ...] = ()
    reviewer: tuple[dict[str, Any], ...] = ()
    endorser: tuple[dict[str, Any], ...] = ()

    @property
    def period(self) -> str:
        return f"{self.effective_start or '...'} to {self.effective_end or 'open'}"

    def in_effect(self, day: dt.date) -> bool:
        start = self.effective_start is None or dt.date.fromisoformat(self.effective_start) <= day
        return start and (self.effective_end is None or day <= dt.date.fromisoformat(self.effective_end))

    def metadata(self) -> dict[str, Any]:
        """The FHIR elements, for a PlanDefinition or Library (absent ones left out)."""
        period = {"start": self.effective_start, "end": self.effective_end}
        found = {  # in the order R4 lists them
            "approvalDate": self.approval_date,
            "lastReviewDate": self.last_review_date,
            "effectivePeriod": {k: v for k, v in period.items() if v is not None},
            "author": list(self.author),
            "reviewer": list(self.reviewer),
            "endorser": list(self.endorser),
        }
        return {k: v for k, v in found.items() if v}


@dataclass(frozen=True)
class RuleTable:
    id: str
    version: str
    date: str  # publication date of this version (its artefacts carry it, so output stays reproducible)
    change_log: tuple[Change, ...]  # oldest first; the last entry is this version
    lifecycle: Lifecycle
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
        spans = {n: f.lookback.span if f.lookback else dt.timedelta.max for n, f in self.facts.items()}
        self.windows.update(spans)

    @property
    def status(self) -> str:
        return self.lifecycle.status

    @property
    def version_key(self) -> tuple[int, ...]:
        """The version as numbers, for "newest" (1.10.0 comes after 1.9.0)."""
        return version_key(self.version)

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)


def describe(condition: Condition, table: RuleTable) -> str:
    """A condition in words, with the facts' labels (the PlanDefinition's and the table diff's)."""
    if isinstance(condition, Leaf):
        label = table.facts[condition.fact].label
        if condition.present:
            return f"{label} present"
        if condition.one_of:
            return f"{label} is {' or '.join(condition.one_of)}"
        return f"{label} more than {condition.greater_than} days"
    joiner = " and " if condition.op == "all" else " or "
    return "(" + joiner.join(describe(t, table) for t in condition.terms) + ")"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def risk_rank(risk: str) -> int:
    return RISKS.index(risk)


def priority_rank(priority: str) -> int:
    return PRIORITIES.index(priority)


def load_table(path: Path | None = None) -> RuleTable:
    """Read and validate a rule table file (None: the one the service runs by default)."""
    if path is None:
        from service.rules.versions import default_table_file

        path = default_table_file()
    return _load(Path(path))


@cache
def _load(path: Path) -> RuleTable:
    """Cached because it is immutable data."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"rule table {path}: cannot read: {exc}") from exc
    try:
        table = _table(raw)
        _schema()(raw)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise ConfigError(f"rule table {path}: {exc.message} (rule-table.schema.json)") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"rule table {path}: {exc}") from exc
    return table


@cache
def _schema() -> Any:
    return fastjsonschema.compile(json.loads(TABLE_SCHEMA.read_text(encoding="utf-8")), use_formats=False)


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
    _require(bool(_VERSION.fullmatch(str(raw["version"]))), f"version {raw['version']!r} is not N.N.N")
    changes = tuple(Change(c["version"], c["date"], c["change"]) for c in raw["changeLog"])
    _require(
        bool(changes) and changes[-1].version == raw["version"] and changes[-1].date == raw["date"],
        f"changeLog must end with an entry for version {raw['version']} dated {raw['date']}",
    )
    seen = [version_key(c.version) for c in changes if _VERSION.fullmatch(c.version)]
    _require(
        len(seen) == len(changes) and seen == sorted(set(seen)),
        "changeLog must list each version once, oldest first",
    )
    lifecycle = _lifecycle(raw)
    _require(
        all(f.lookback is not None for f in facts.values()) or lifecycle.status == "retired",
        "lookback null (no window, contract 1.0.0) is kept only in a retired table; give every fact one",
    )
    return RuleTable(
        id=raw["id"],
        version=raw["version"],
        date=raw["date"],
        change_log=changes,
        lifecycle=lifecycle,
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
_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")


def _lifecycle(raw: dict[str, Any]) -> Lifecycle:
    """Status, dates and people, in an order that makes sense: an active or retired version was approved
    and endorsed, and took effect no earlier than its approval; a retired one says when it stopped."""
    status = raw["status"]
    _require(status in STATUSES, f"status {status!r} not in {STATUSES}")
    period = raw.get("effectivePeriod") or {}
    dates = {
        "approvalDate": raw.get("approvalDate"),
        "lastReviewDate": raw.get("lastReviewDate"),
        "effectivePeriod.start": period.get("start"),
        "effectivePeriod.end": period.get("end"),
    }
    for name, value in dates.items():
        _require(value is None or _is_day(value), f"{name} {value!r} is not a day (YYYY-MM-DD)")
    people = {role: tuple(raw.get(role) or ()) for role in ("author", "reviewer", "endorser")}
    _require(bool(people["author"]), "author: name at least one (a role, e.g. 'neckcheck clinical lead')")
    if status != "draft":
        for needed in ("approvalDate", "effectivePeriod.start"):
            _require(dates[needed] is not None, f"an {status} table needs {needed}")
        for role in ("reviewer", "endorser"):
            _require(bool(people[role]), f"an {status} table needs a {role}")
        _order(dates, "approvalDate", "effectivePeriod.start")
        _order(dates, "approvalDate", "lastReviewDate")
    if status == "retired":
        _require(dates["effectivePeriod.end"] is not None, "a retired table needs effectivePeriod.end")
    _order(dates, "effectivePeriod.start", "effectivePeriod.end")
    return Lifecycle(
        status=status,
        approval_date=dates["approvalDate"],
        last_review_date=dates["lastReviewDate"],
        effective_start=dates["effectivePeriod.start"],
        effective_end=dates["effectivePeriod.end"],
        author=people["author"],
        reviewer=people["reviewer"],
        endorser=people["endorser"],
    )


def _is_day(value: object) -> bool:
    try:
        return bool(_DATE.fullmatch(str(value))) and dt.date.fromisoformat(str(value)) is not None
    except ValueError:  # 2026-02-30
        return False


def _order(dates: dict[str, str | None], first: str, then: str) -> None:
    earlier, later = dates[first], dates[then]
    if earlier is not None and later is not None:
        _require(earlier <= later, f"{then} {later} is before {first} {earlier}")


def _fact(raw: dict[str, Any]) -> FactDef:
    _require(raw["kind"] in FACT_KINDS, f"fact {raw['name']}: kind {raw['kind']!r} not in {FACT_KINDS}")
    return FactDef(
        name=raw["name"],
        kind=raw["kind"],
        question=raw["question"],
        label=raw["label"],
        lookback=_lookback(raw.get("lookback"), f"fact {raw['name']}", "lookback" in raw),
        symptom=bool(raw.get("symptom", False)),
        informational=bool(raw.get("informational", False)),
        input_only=bool(raw.get("inputOnly", False)),
        minimum=raw.get("min"),
        maximum=raw.get("max"),
    )


def _lookback(raw: Any, where: str, given: bool) -> Lookback | None:
    """Every fact has one: a reading without a window would count however old it is (rules.md §1). An
    explicit null is that on purpose: a retired table from before lookbacks, kept as it ran (checked in
    ``_table``)."""
    if given and raw is None:
        return None
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
