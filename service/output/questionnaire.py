"""The screening Questionnaire, SDC-grade, generated from the rule table and codes so it cannot drift.

What the rule table holds (facts, questions, which group a fact belongs to) is clinical content, versioned
with the rule set. How the form is laid out - the order of the groups and which questions only show after
another answer - is presentation, kept here in ``LAYOUT``: reordering questions changes no rule, so it must
not need a rule set version bump. ``check_layout`` proves at start-up that the layout hides no fact a rule
needs (see its docstring); a rule table edit that breaks that stops the service.

FHIR R4 Questionnaire (§19.19) with the SDC extensions (Structured Data Capture STU 3, R4) that let a form
engine pre-populate items from recent Observations and extract answers back into Observations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.codebook import CodeBook
from service.errors import ConfigError
from service.rules.table import Condition, FactDef, Group, Leaf, RuleTable

JSON = dict[str, Any]
PUBLISHER = "neckcheck"

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition"
OBSERVATION_LINK_PERIOD = f"{SDC}/sdc-questionnaire-observationLinkPeriod"
OBSERVATION_EXTRACT = f"{SDC}/sdc-questionnaire-observationExtract"
PROFILES = (f"{SDC}/sdc-questionnaire-pop-obsn", f"{SDC}/sdc-questionnaire-extr-obsn")
UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"

# How far back a form engine looks for an Observation to pre-fill an item (SDC observationLinkPeriod): the
# fact's own lookback from the rule table (rules.md §1, evidence recency), the same window in which $assess
# and $populate count a reading as current. An older record cannot speak for the patient now.
UNIT_NAMES = {"min": "minutes", "h": "hours", "d": "days", "wk": "weeks"}

_ITEM_TYPE = {"bool": "boolean", "side": "choice", "days": "integer", "date": "date", "score": "integer"}


@dataclass(frozen=True)
class Layout:
    """Presentation: group order (urgent signs first) and gates (a fact shown only when another is yes)."""

    group_order: tuple[str, ...]
    gates: dict[str, str]  # fact -> the boolean fact that must be answered yes for it to show


LAYOUT = Layout(
    group_order=("group-urgent", "group-face", "group-associated", "group-neck"),
    gates={
        "facial-numbness-side": "facial-numbness",
        "facial-numbness-days": "facial-numbness",
        "facial-numbness-onset": "facial-numbness",  # input form of the duration (rules.md §1)
        "headache": "facial-numbness",  # "headache with the numbness"
        "dizziness": "facial-numbness",
        "arm-pain-radiating": "neck-pain",
        "arm-hand-numbness": "neck-pain",
    },
)


def _leaves_with_context(condition: Condition, required: frozenset[str]) -> list[tuple[Leaf, frozenset[str]]]:
    """Every leaf with the facts an enclosing ``all`` requires present beside it."""
    if isinstance(condition, Leaf):
        return [(condition, required)]
    assert isinstance(condition, Group)
    here = required
    if condition.op == "all":
        here = required | {t.fact for t in condition.terms if isinstance(t, Leaf) and t.present}
    return [pair for term in condition.terms for pair in _leaves_with_context(term, here)]


def check_layout(table: RuleTable, layout: Layout = LAYOUT) -> None:
    """Refuse a layout that is not a reordering of the table's groups or could hide a fact a rule needs.

    A gated fact may appear in a rule only inside an ``all`` that also requires its gate present: while
    the gate is not yes, that ``all`` cannot hold whatever the hidden answer, so no rule fires or orders
    anything because of a fact the form never showed. A gate is itself a boolean fact that is never gated
    (a chain of gates would hide a gate's gate). The duration's input form (the onset date) shares the
    duration's gate, because intake derives one from the other.
    """
    names = [g.link_id for g in table.groups]
    if sorted(layout.group_order) != sorted(names):
        raise ConfigError(f"questionnaire layout orders groups {layout.group_order}, the table has {names}")
    for fact, gate in layout.gates.items():
        if fact not in table.facts or gate not in table.facts:
            raise ConfigError(f"questionnaire layout gates unknown fact {fact!r} on {gate!r}")
        if table.facts[gate].kind != "bool" or gate in layout.gates:
            raise ConfigError(f"questionnaire layout: gate {gate!r} must be an ungated boolean fact")
    for rule in table.rules:
        for leaf, required in _leaves_with_context(rule.when, frozenset()):
            needs = layout.gates.get(leaf.fact)
            if needs is not None and needs not in required:
                raise ConfigError(
                    f"rule {rule.id} uses {leaf.fact!r} without requiring {needs!r} present, "
                    f"but the Questionnaire hides {leaf.fact!r} unless {needs!r} is yes"
                )
    days = [f.name for f in table.facts.values() if f.kind == "days"]
    for onset in (f.name for f in table.facts.values() if f.kind == "date" and f.input_only):
        if any(layout.gates.get(d) != layout.gates.get(onset) for d in days):
            raise ConfigError(f"{onset!r} must share the gate of {days}: it is their input form")


def questionnaire_canonical(book: CodeBook, table: RuleTable) -> str:
    """The published Questionnaire's canonical with its version: what a QuestionnaireResponse names."""
    return f"{book.canonical('Questionnaire', book.raw['questionnaire']['id'])}|{table.version}"


def item_codings(book: CodeBook, fact: str) -> list[JSON]:
    """All the fact's codings from codes.json, standard codes first and neckcheck's local code last."""
    codings = book.fact_codings(fact)
    return sorted(codings, key=lambda c: c["system"] == book.local_fact_system)


def lookback_duration(fact: FactDef, book: CodeBook) -> JSON | None:
    """The fact's lookback as a FHIR Duration (UCUM); None for a fact with no window (a retired table from
    before lookbacks: any reading counts)."""
    window = fact.lookback
    if window is None:
        return None
    unit = UNIT_NAMES[window.code]
    return {"value": window.value, "unit": unit, "system": book.raw["units"]["system"], "code": window.code}


def _extensions(fact: FactDef, book: CodeBook) -> list[JSON]:
    units = book.raw["units"]["system"]
    window = lookback_duration(fact, book)
    linked = [{"url": OBSERVATION_LINK_PERIOD, "valueDuration": window}] if window else []
    ext: list[JSON] = [*linked, {"url": OBSERVATION_EXTRACT, "valueBoolean": True}]
    if fact.kind == "days":
        ext.append({"url": UNIT, "valueCoding": {"system": units, "code": "d"}})
    minimum = 0 if fact.kind == "days" else fact.minimum  # a duration is a whole number of days >= 0
    if minimum is not None:
        ext.append({"url": MIN_VALUE, "valueInteger": minimum})
    if fact.maximum is not None:
        ext.append({"url": MAX_VALUE, "valueInteger": fact.maximum})
    return ext


def _item(fact: FactDef, book: CodeBook, layout: Layout) -> JSON:
    item: JSON = {
        "extension": _extensions(fact, book),
        "linkId": fact.name,
        "code": item_codings(book, fact.name),
        "text": fact.question,
        "type": _ITEM_TYPE[fact.kind],
    }
    gate = layout.gates.get(fact.name)
    if gate is not None:
        # one condition per gate, so no enableBehavior (R4 que-12 requires it only for two or more)
        item["enableWhen"] = [{"question": gate, "operator": "=", "answerBoolean": True}]
    if fact.kind == "side":
        item["answerOption"] = [{"valueCoding": book.side_coding(s)} for s in ("left", "right", "both")]
    return item


def questionnaire(table: RuleTable, book: CodeBook, layout: Layout = LAYOUT) -> JSON:
    check_layout(table, layout)
    qid = book.raw["questionnaire"]["id"]
    groups = {g.link_id: g for g in table.groups}
    return {
        "resourceType": "Questionnaire",
        "id": qid,
        "meta": {"profile": list(PROFILES)},
        "url": book.canonical("Questionnaire", qid),
        "version": table.version,
        "name": "NeckcheckScreen",
        "title": f"{table.title}: screening questions",
        "status": "active",
        "date": table.date,
        "publisher": PUBLISHER,
        "description": (
            "Urgent signs first. Answer each yes/no item with valueBoolean (a Y/N valueCoding of "
            f"{book.raw['yesNo']['system']} is also read). Questions about the numbness show only when "
            "facial numbness is yes, questions about the arm only when neck pain is yes. Unanswered and "
            "hidden items are treated as unknown, never as no."
        ),
        "subjectType": ["Patient"],
        "item": [
            {
                "linkId": groups[link_id].link_id,
                "text": groups[link_id].text,
                "type": "group",
                "item": [_item(table.facts[name], book, layout) for name in groups[link_id].facts],
            }
            for link_id in layout.group_order
        ],
    }
