"""The rule table and codes.json → the CQL library ``NeckcheckEscalation`` (FHIR 4.0.1), as text.

The one rule table stays the source: this module writes what it says in CQL, fact by fact and rule by rule,
so another engine can run it and a reviewer can read it (``make cql`` writes the file; a test fails on drift).

What the CQL must mean is what neckcheck's intake and rules do (rules.md §1-§4), read for read:
three-valued facts (``null`` = unknown, never ``exists``), CQL's Kleene ``and``/``or`` for the rules,
latest reading wins with the worse value on a tie, both Observation patterns, QuestionnaireResponse items
by linkId, durations in the units of codes.json, laterality in every form, and evidence recency
(lookbacks, date-only readings aged from the end of their day, durations that grow with the reading's age).
Every instant is normalised to UTC milliseconds first (``"Instant"``): CQL compares values of different
precision as uncertain, which would turn a plain "later than" into ``null``.
"""

from __future__ import annotations

import textwrap
from fractions import Fraction

from service.codebook import CodeBook
from service.errors import ConfigError
from service.rules.table import (
    PRIORITIES,
    RISKS,
    Condition,
    FactDef,
    Group,
    Leaf,
    Rule,
    RuleTable,
    priority_rank,
    risk_rank,
)

LIBRARY_NAME = "NeckcheckEscalation"
LIBRARY_ID = "neckcheck-escalation-logic"  # the FHIR Library's id
FHIR_VERSION = "4.0.1"
NUMBNESS = "facial-numbness"  # the finding that may carry its side, duration and onset (rules.md §4)
OUTPUTS = ("Risk", "Status", "Proposed Orders", "Rules Fired", "Facts To Ask")
ITEM_DEPTH = 6  # levels of QuestionnaireResponse items read (CQL has no recursion; ours nests two)
WIDTH = 110

# names a reviewer knows the code systems by; any other system is named by the last part of its URL
_SYSTEM_NAMES = {
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
    "http://terminology.hl7.org/CodeSystem/v2-0136": "v2-0136",
    "http://terminology.hl7.org/CodeSystem/data-absent-reason": "DataAbsentReason",
}
# how each kind of fact is read in CQL (a duration in days, exact), and what an answer to it is read as
_TYPE = {"bool": "Boolean", "side": "String", "days": "Decimal", "date": "DateTime", "score": "Decimal"}
_ANSWER = {
    "bool": "Boolean Answer",
    "side": "Side Answer",
    "days": "Days Answer",
    "date": "Date Answer",
    "score": "Score Answer",
}
_OBSERVED = {
    "bool": '"Recorded Answer"(V.observation)',
    "side": '"Recorded Side"(V.observation)',
    "days": '"Recorded Days"(V.observation)',
    "date": '"Recorded Date"(V.observation)',
    "score": '"Recorded Score"(V.observation)',
}


def string(text: str) -> str:
    """A CQL string literal (CQL §3.3: single quotes, backslash escapes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def name(text: str) -> str:
    """A quoted CQL identifier: fact names and rule ids keep their spelling (``"urgent-signs"``)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def comment(text: str, indent: str = "") -> str:
    return "\n".join(
        f"{indent}// {line}" for line in textwrap.wrap(text, WIDTH - len(indent) - 3, break_on_hyphens=False)
    )


def system_name(system: str) -> str:
    return _SYSTEM_NAMES.get(system) or system.rstrip("/").rsplit("/", 1)[-1]


class _Codes:
    """The code and codesystem declarations, each code under a name a reviewer can read."""

    def __init__(self, book: CodeBook) -> None:
        self.systems: dict[str, str] = {}
        self.codes: dict[tuple[str, str], str] = {}
        self.lines: list[str] = []
        book_raw = book.raw
        self.system_labels = {book.local_fact_system: "neckcheck fact"}
        for fact in book_raw["facts"].values():
            for coding in fact["codings"]:
                self.add(coding)
        self.add(book_raw["symptom"])
        for key in ("attribute", "left", "right", "both"):
            self.add(book_raw["laterality"][key])
        yes_no = book_raw["yesNo"]
        self.add({"system": yes_no["system"], "code": yes_no["yes"], "display": "Yes"})
        self.add({"system": yes_no["system"], "code": yes_no["no"], "display": "No"})
        unknown = book_raw["askedUnknown"]
        self.add({"system": unknown["system"], "code": unknown["code"], "display": "Asked but unknown"})

    def label(self, system: str) -> str:
        return self.system_labels.get(system) or system_name(system)

    def add(self, coding: dict[str, str]) -> None:
        system, code = coding["system"], coding["code"]
        label = self.label(system)
        self.systems.setdefault(system, label)
        ref = f"{coding.get('display') or code} ({label})"
        if ref in self.codes.values():
            ref = f"{label} {code}"
        self.codes[(system, code)] = ref
        display = f" display {string(coding['display'])}" if coding.get("display") else ""
        self.lines.append(f"code {name(ref)}: {string(code)} from {name(label)}{display}")

    def ref(self, coding: dict[str, str]) -> str:
        return name(self.codes[(coding["system"], coding["code"])])

    def declarations(self) -> str:
        systems = [f"codesystem {name(label)}: {string(system)}" for system, label in self.systems.items()]
        return "\n".join(systems) + "\n\n" + "\n".join(self.lines)


def cql_text(table: RuleTable, book: CodeBook) -> str:
    """The whole library. Deterministic: the same table and codes always give the same bytes."""
    codes = _Codes(book)
    kinds = {f.kind: f for f in table.facts.values() if f.kind != "bool"}
    parts = [
        _header(table),
        f"library {LIBRARY_NAME} version {string(table.version)}",
        f"using FHIR version {string(FHIR_VERSION)}",
        codes.declarations(),
        _parameters(),
        "context Patient",
        _section("The evaluation time and the age of a reading (rules.md §1)"),
        _TIME_FUNCTIONS,
        _section("Reading the record (rules.md §4)"),
        _fact_codes(table, book, codes),
        _reading_functions(book, codes, table),
        _section(
            "Resolving each fact: current readings only, the latest wins, on a tie the more cautious value"
        ),
        _resolution_functions(),
        _section("The facts: true = present, false = absent, null = unknown (rules.md §1)"),
        *(
            _fact(fact, kinds, codes.ref(book.raw["laterality"]["attribute"]))
            for fact in table.facts.values()
        ),
        _section("The rules (rules.md §2): CQL's and/or are three-valued, as neckcheck's engine is"),
        *(_rule(rule, table) for rule in table.rules),
        _section("The result (rules.md §2, §3)"),
        _outputs(table),
    ]
    return "\n\n".join(p.rstrip() for p in parts) + "\n"


def _header(table: RuleTable) -> str:
    lines = [
        f"{LIBRARY_NAME} {table.version}: {table.title}.",
        "",
        f"Rule set {table.id} {table.version}, generated by service/cql/generate.py from the rule table and "
        "codes.json (`make cql` writes this file and its ELM): do not edit it by hand. The clinical contract "
        "is rules.md.",
        "",
        "Every fact is three-valued: true (present), false (absent) or null (unknown: not recorded, recorded "
        "as unknown, or recorded only longer ago than its lookback). The rules combine facts with CQL's "
        "three-valued and/or, the logic neckcheck's engine uses; a fact is never tested with exists(), "
        "which would read unknown as no.",
        "",
        'Outputs: "Risk" (negligible | low | moderate | high), "Status" (final | preliminary), '
        '"Proposed Orders" (key and priority of each), "Rules Fired" (rule ids), "Facts To Ask" (fact '
        "names, the Questionnaire's linkIds).",
    ]
    body = "\n".join((" * " + line).rstrip() for block in lines for line in _wrap(block))
    return "/*\n" + body + "\n */"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH - 3, break_on_hyphens=False) or [""]


def _section(title: str) -> str:
    return f"// ---- {title} " + "-" * max(3, WIDTH - len(title) - 10)


def _parameters() -> str:
    return "\n".join(
        [
            comment(
                "The evaluation time, as $assess decides it: the asOf parameter, else the Bundle's "
                "timestamp, else the clock. CQL cannot see Bundle.timestamp, so the caller passes it; null "
                "means Now()."
            ),
            'parameter "Evaluation Time" DateTime',
            comment(
                "True only when the request gave asOf explicitly: the question is then what the rules would "
                "have said at that time, so a resource dated later did not exist yet and is not used "
                "(rules.md §1, contract 1.0.1). Otherwise a later date is most likely clock skew: used."
            ),
            'parameter "Explicit As Of" Boolean default false',
        ]
    )


_TIME_FUNCTIONS = """\
define "Evaluation Instant":
  "Instant"(Coalesce("Evaluation Time", Now()))

define "As Of Given":
  Coalesce("Explicit As Of", false)

// A FHIR date or dateTime as one instant, to the millisecond. A value without a time (a day, a month or a
// year) is taken at its first instant in UTC, as neckcheck reads it, so that any two readings compare
// exactly (CQL calls a comparison of values of different precision uncertain: null).
define function "Instant"(value DateTime):
  if value is null then null
  else DateTime(year from value, Coalesce(month from value, 1), Coalesce(day from value, 1),
    Coalesce(hour from value, 0), Coalesce(minute from value, 0), Coalesce(second from value, 0),
    Coalesce(millisecond from value, 0), if hour from value is null then 0.0 else timezoneoffset from value)

define function "Date Instant"(value Date):
  if value is null then null
  else DateTime(year from value, Coalesce(month from value, 1), Coalesce(day from value, 1), 0, 0, 0, 0, 0.0)

// The last instant a value names: the end of its day, month or year when it has no time. A reading dated
// yesterday was known to hold until the end of yesterday, so that is what its age runs from.
define function "End Of"(value DateTime):
  case
    when value is null then null
    when month from value is null then "Instant"(value) + 1 year
    when day from value is null then "Instant"(value) + 1 month
    when hour from value is null then "Instant"(value) + 1 day
    else "Instant"(value)
  end

// Whether a resource may be used at the evaluation time: only an explicit asOf sets later-dated evidence
// aside; a resource with no time is always used.
define function "Existed"(time DateTime):
  not "As Of Given" or time is null or time <= "Evaluation Instant"

// Whether a reading still speaks for the patient now: last known to hold no longer ago than its fact's
// lookback (exactly the lookback is still current). A reading with no time, or still going on, is current.
define function "Is Current"(seen DateTime, lookback System.Quantity):
  seen is null or seen >= "Evaluation Instant" - lookback

// How long ago, in days, a reading was last known to hold: zero with no time, still going on, or dated later.
define function "Age In Days"(seen DateTime):
  if seen is null or seen >= "Evaluation Instant" then 0.0
  else (duration in milliseconds between seen and "Evaluation Instant") / 86400000.0"""


def _fact_codes(table: RuleTable, book: CodeBook, codes: _Codes) -> str:
    out = []
    for fact in table.facts.values():
        refs = ", ".join(codes.ref(c) for c in book.raw["facts"][fact.name]["codings"])
        out.append(f"define {name(fact.name + ' codes')}:\n  {{ {refs} }}")
    every = ",\n    ".join(f'"Tokens Of"({name(f + " codes")})' for f in table.facts)
    out.append(f'define "Fact tokens":\n  Flatten({{\n    {every}\n  }})')
    names = textwrap.fill(", ".join(string(f) for f in table.facts), WIDTH - 4, break_on_hyphens=False)
    out.append('define "Fact names":\n  {\n' + textwrap.indent(names, "    ") + "\n  }")
    return "\n\n".join(out)


def _units(book: CodeBook) -> str:
    """The duration units of codes.json, each converted to days exactly (h is /24, not a rounded factor)."""
    lines = []
    for code, factor in book.raw["units"]["toDays"].items():
        ratio = Fraction(factor).limit_denominator(10_000)
        if abs(float(ratio) - factor) > 1e-12:
            raise ValueError(f"unit {code}: {factor} days is no simple fraction")
        value = "quantity.value.value"
        if ratio.denominator != 1:
            value += f" / {ratio.denominator}"
        if ratio.numerator != 1:
            value += f" * {ratio.numerator}"
        lines.append(f"      when {string(code)} then {value}")
    return "\n".join(lines)


def _reading_functions(book: CodeBook, codes: _Codes, table: RuleTable) -> str:
    raw = book.raw
    canonical = book.canonical("Questionnaire", raw["questionnaire"]["id"])
    yes, no = (codes.ref({"system": raw["yesNo"]["system"], "code": raw["yesNo"][k]}) for k in ("yes", "no"))
    unknown = codes.ref(raw["askedUnknown"])
    sides = "\n".join(
        f'    when "Is"(coding, {codes.ref(raw["laterality"][s])}) then {string(s)}'
        for s in ("left", "right", "both")
    )
    names = ["R.item", *(f"L{d}" for d in range(1, ITEM_DEPTH))]
    depth = ", ".join(f'{names[d]}: "Children"({names[d - 1]})' for d in range(1, ITEM_DEPTH))
    levels = ", ".join(names)
    lookbacks = "\n".join(f"    when {string(f.name)} then {_quantity(f)}" for f in table.facts.values())
    return f"""\
define function "Is"(coding FHIR.Coding, code System.Code):
  coding.system.value = code.system and coding.code.value = code.code

// Codes compared as 'system|code' strings: each resource's codes are read once (a FHIR element read costs).
define function "Tokens"(concept FHIR.CodeableConcept):
  (concept.coding) C return all C.system.value + '|' + C.code.value

define function "Tokens Of"(codes List<System.Code>):
  (codes) K return all K.system + '|' + K.code

define function "Any Of"(tokens List<String>, wanted List<String>):
  exists ((tokens) T where T in wanted)

// Observations that count: status preliminary, final, amended or corrected (entered-in-error and cancelled
// are ignored), existing at the evaluation time; each read once into its codes, its value's codes, its time
// and the instant its age runs from.
define "Observations":
  [Observation] O
    let observed: "Time"(O)
    where O.status.value in {{ 'preliminary', 'final', 'amended', 'corrected' }}
      and "Existed"(observed)
    return all Tuple {{
      observation: O,
      codes: "Tokens"(O.code),
      findings: "Tokens"(O.value as FHIR.CodeableConcept),
      time: observed,
      seen: "Seen"(O)
    }}

// An Observation speaks of a fact through its code (the fact's code) ...
define function "Coded As"(codes List<System.Code>):
  "Observations" V where "Any Of"(V.codes, "Tokens Of"(codes))

// ... or, coded LOINC 75325-1 Symptom, through its value: the finding is present.
define function "Symptom Finding"(codes List<System.Code>):
  "Observations" V
    where "Any Of"(V.codes, "Tokens Of"({{ {codes.ref(raw["symptom"])} }}))
      and not "Any Of"(V.codes, "Fact tokens")
      and "Any Of"(V.findings, "Tokens Of"(codes))

// When an Observation was made: effective[x] (a period's start, else its end), else issued.
define function "Time"(observation FHIR.Observation):
  case
    when observation.effective is FHIR.dateTime then "Instant"((observation.effective as FHIR.dateTime).value)
    when observation.effective is FHIR.instant then "Instant"((observation.effective as FHIR.instant).value)
    when (observation.effective as FHIR.Period)."end" is not null
      then "Instant"(Coalesce((observation.effective as FHIR.Period)."start".value,
        (observation.effective as FHIR.Period)."end".value))
    when (observation.effective as FHIR.Period)."start" is not null
      then "Instant"((observation.effective as FHIR.Period)."start".value)
    else "Instant"(observation.issued.value)
  end

// The last instant it is known to have held, which its age runs from: the end of what effective[x] names,
// a period's end (null while the period is open: still going on), else issued.
define function "Seen"(observation FHIR.Observation):
  case
    when observation.effective is FHIR.dateTime then "End Of"((observation.effective as FHIR.dateTime).value)
    when observation.effective is FHIR.instant then "Instant"((observation.effective as FHIR.instant).value)
    when (observation.effective as FHIR.Period)."end" is not null
      then "End Of"((observation.effective as FHIR.Period)."end".value)
    when (observation.effective as FHIR.Period)."start" is not null then null
    else "Instant"(observation.issued.value)
  end

define function "Yes No"(coding FHIR.Coding):
  case
    when "Is"(coding, {yes}) then true
    when "Is"(coding, {no}) then false
    else null
  end

define function "Is Asked Unknown"(coding FHIR.Coding):
  Coalesce("Is"(coding, {unknown}), false)

// A yes/no finding: valueBoolean, a Y/N valueCodeableConcept (its first Y, N or asked-unknown coding), a
// coded finding with no value at all (present); dataAbsentReason or any other value: unknown.
define function "Recorded Answer"(observation FHIR.Observation):
  case
    when observation.dataAbsentReason is not null then null
    when observation.value is FHIR.boolean then (observation.value as FHIR.boolean).value
    when observation.value is FHIR.CodeableConcept then "Yes No"(First(
      ((observation.value as FHIR.CodeableConcept).coding) C
        where Coalesce("Yes No"(C) is not null or "Is Asked Unknown"(C), false)))
    when observation.value is null then true
    else null
  end

define function "Side Of"(coding FHIR.Coding):
  case
{sides}
    else null
  end

// The laterality a concept names (left, right or both), null when it names none.
define function "Side"(concept FHIR.CodeableConcept):
  First(((concept.coding) C return all "Side Of"(C)) S where S is not null)

define function "Recorded Side"(observation FHIR.Observation):
  if observation.dataAbsentReason is not null then null
  else "Side"(observation.value as FHIR.CodeableConcept)

// A duration in days, as exact as given: valueInteger days, or a valueQuantity in a UCUM unit of codes.json.
define function "Days"(whole FHIR.integer, quantity FHIR.Quantity):
  if whole is not null then ToDecimal(whole.value)
  else if quantity.system.value = {string(raw["units"]["system"])} then
    case quantity.code.value
{_units(book)}
      else null
    end
  else null

define function "Recorded Days"(observation FHIR.Observation):
  if observation.dataAbsentReason is not null then null
  else "Days"(observation.value as FHIR.integer, observation.value as FHIR.Quantity)

define function "Recorded Date"(observation FHIR.Observation):
  if observation.dataAbsentReason is not null then null
  else "Instant"((observation.value as FHIR.dateTime).value)

define function "Recorded Score"(observation FHIR.Observation):
  case
    when observation.dataAbsentReason is not null then null
    when observation.value is FHIR.integer then ToDecimal((observation.value as FHIR.integer).value)
    else (observation.value as FHIR.Quantity).value.value
  end

// The facial-numbness Observations that say present (by the fact's code): they may carry the side (a
// laterality component or bodySite), the duration (a component) and the onset (effectivePeriod.start).
define "Numbness Observations":
  ("Coded As"({name(NUMBNESS + " codes")})) V where "Recorded Answer"(V.observation) is true

// QuestionnaireResponses of neckcheck's own Questionnaire (with or without |version) that count: completed,
// amended or in progress, existing at the evaluation time. Their items' linkIds are the fact names.
define "Questionnaire Responses":
  [QuestionnaireResponse] R
    where R.status.value in {{ 'completed', 'amended', 'in-progress' }}
      and (R.questionnaire.value = {string(canonical)}
        or StartsWith(R.questionnaire.value, {string(canonical + "|")}))
      and "Existed"("Instant"(R.authored.value))

// The items below these: nested in a group, or under an answer. (Every list handed to Flatten is non-null:
// cql-execution flattens a list only when all its elements are lists.)
define function "Children"(items List<FHIR.QuestionnaireResponse.Item>):
  Flatten(({{
    Flatten((items) I where I.item is not null return all I.item),
    Flatten(Flatten((items) I where I.answer is not null
      return all ((I.answer) A where A.item is not null return all A.item)))
  }}) L where L is not null)

// Every item of a response, {ITEM_DEPTH} levels deep (CQL has no recursion; neckcheck's Questionnaire nests
// two).
define function "Items"(response FHIR.QuestionnaireResponse):
  response R
    let {depth}
    return Flatten(({{ {levels} }}) L where L is not null)

// Every answer of every response, with its item's linkId, the response's time (authored) and the instant its
// age runs from (the end of authored when authored has no time).
define "Answers":
  Flatten(Flatten(("Questionnaire Responses") R
    let authoredAt: "Instant"(R.authored.value), agedFrom: "End Of"(R.authored.value),
      unfinished: R.status.value = 'in-progress'
    return all (("Items"(R)) I where I.answer is not null
      return all ((I.answer) A
        return all Tuple {{
          linkId: I.linkId.value, answer: A, time: authoredAt, seen: agedFrom, unfinished: unfinished
        }}))))

define function "Answers To"(linkId String):
  "Answers" A where A.linkId = linkId

define function "Boolean Answer"(answer FHIR.QuestionnaireResponse.Item.Answer):
  case
    when "Is Asked Unknown"(answer.value as FHIR.Coding) then null
    when answer.value is FHIR.boolean then (answer.value as FHIR.boolean).value
    else "Yes No"(answer.value as FHIR.Coding)
  end

define function "Side Answer"(answer FHIR.QuestionnaireResponse.Item.Answer):
  if "Is Asked Unknown"(answer.value as FHIR.Coding) then null
  else "Side Of"(answer.value as FHIR.Coding)

define function "Days Answer"(answer FHIR.QuestionnaireResponse.Item.Answer):
  if "Is Asked Unknown"(answer.value as FHIR.Coding) then null
  else ToDecimal((answer.value as FHIR.integer).value)

define function "Date Answer"(answer FHIR.QuestionnaireResponse.Item.Answer):
  case
    when "Is Asked Unknown"(answer.value as FHIR.Coding) then null
    when answer.value is FHIR.date then "Date Instant"((answer.value as FHIR.date).value)
    else "Instant"((answer.value as FHIR.dateTime).value)
  end

define function "Score Answer"(answer FHIR.QuestionnaireResponse.Item.Answer):
  case
    when "Is Asked Unknown"(answer.value as FHIR.Coding) then null
    when answer.value is FHIR.integer then ToDecimal((answer.value as FHIR.integer).value)
    else (answer.value as FHIR.decimal).value
  end

// Each fact's lookback (rules.md §1: 24 hours for the urgent signs, 14 days for every other fact).
define function "Lookback"(fact String):
  case fact
{lookbacks}
    else null
  end

// An unfinished (in-progress) questionnaire holds the result back when one of its answers is used.
define "Unfinished Questionnaire Used":
  exists ("Answers" A
    where A.unfinished and A.linkId in "Fact names" and "Is Current"(A.seen, "Lookback"(A.linkId)))"""


def _quantity(fact: FactDef) -> str:
    if fact.lookback is None:
        raise ConfigError(f"{fact.name} has no lookback: the CQL library is generated for tables that have")
    unit = {"min": "minutes", "h": "hours", "d": "days", "wk": "weeks"}[fact.lookback.code]
    return f"{fact.lookback.value} {unit}"


# per kind: the CQL type of a value, the name of its resolution, and what is most cautious (rules.md §4)
_RESOLVE = {
    "bool": ("Boolean", "Answer", "present over unknown over absent"),
    "side": ("String", "Side", "one-sided over unknown over both sides"),
    "duration": ("Integer", "Duration", "an unknown duration over the longest one"),
    "date": ("DateTime", "Onset", "an unknown onset over the earliest one"),
    "score": ("Decimal", "Score", "the highest score, unknown ranking as a score of 1 (informational)"),
}
_CAUTIOUS = {
    "bool": """\
  if exists (readings R where R.value is true) then true
  else if exists (readings R where R.value is null) then null
  else if exists (readings R where R.value is false) then false
  else null""",
    "side": """\
  if exists (readings R where R.value = 'left' or R.value = 'right')
    then First(readings R where R.value = 'left' or R.value = 'right' return all R.value)
  else if exists (readings R where R.value is null) then null
  else First(readings R where R.value = 'both' return all R.value)""",
    "duration": """\
  if exists (readings R where R.value is null) then null
  else Max(readings R return all R.value)""",
    "date": """\
  if exists (readings R where R.value is null) then null
  else Min(readings R return all R.value)""",
    "score": """\
  if exists (readings R where R.value > 1) or not exists (readings R where R.value is null)
    then Max(readings R return all R.value)
  else null""",
}


def _resolution_functions() -> str:
    """One resolution per kind of value, each under its own name: cql-execution picks among overloads at run
    time by the values passed, and a list of unknowns matches every overload."""
    out = []
    for kind, (cql_type, label, cautious) in _RESOLVE.items():
        reading = f"List<Tuple {{ value {cql_type}, time DateTime, seen DateTime }}>"
        out.append(
            comment(
                f"The value of the latest readings, the more cautious on a tie ({cautious}). When a reading "
                "has no time, none can be called the latest: all of them are weighed."
            )
            + f"""
define function "{label} Of"(current {reading}):
  "Most Cautious {label}"(
    if exists (current R where R.time is null) then current
    else current R where R.time = Max(current X return all X.time))

define function "Most Cautious {label}"(readings {reading}):
{_CAUTIOUS[kind]}"""
        )
    return "\n\n".join(out)


def _fact(fact: FactDef, kinds: dict[str, FactDef], attribute: str) -> str:
    codes = name(fact.name + " codes")
    readings = name(fact.name + " readings")
    sources = [f'("Coded As"({codes})) V\n      return all {_tuple(_OBSERVED[fact.kind])}']
    # a Symptom Observation says a yes/no finding is present; for any other fact it states no value
    present = "true" if fact.kind == "bool" else f"null as {_TYPE[fact.kind]}"
    sources.append(f'("Symptom Finding"({codes})) V\n      return all {_tuple(present)}')
    sources += _riders(fact, attribute)
    sources.append(
        f'("Answers To"({string(fact.name)})) A\n'
        f'      return all Tuple {{ value: "{_ANSWER[fact.kind]}"(A.answer), time: A.time, seen: A.seen }}'
    )
    body = ",\n    ".join(sources)
    about = f"{fact.label}: {fact.question} Readings count for {fact.lookback} (its lookback)."
    if fact.informational:
        about += " Informational: no rule reads it."
    current = f'{readings} R where "Is Current"(R.seen, {_quantity(fact)})'
    lines = [comment(about), f"define {readings}:\n  Flatten({{\n    {body}\n  }})", ""]
    if fact.kind != "days":
        label = _RESOLVE[fact.kind][1]
        lines.append(f'define {name(fact.name)}:\n  "{label} Of"({current})')
        return "\n".join(lines)
    onset = kinds["date"].name
    now = name(fact.name + " current readings")
    lines += [
        comment(
            "A recorded duration is measured at the evaluation time: while the numbness goes on (present, "
            "or not known to have stopped) its reading's age is added, and the sum is rounded down to whole "
            "days. With no current duration reading, the duration is the time since the onset."
        ),
        f"define {now}:\n  {current}",
        "",
        f"define {name(fact.name)}:\n"
        f'  if not exists {now} then "Days Since Onset"\n'
        f'  else "Duration Of"({now} R\n'
        f'    return all Tuple {{ value: "Days Now"(R.value, R.seen), time: R.time, seen: R.seen }})',
        "",
        f'define "Numbness Goes On":\n  not ({name(NUMBNESS)} is false)',
        "",
        'define function "Days Now"(recorded Decimal, seen DateTime):\n'
        "  if recorded is null then null\n"
        '  else Floor(recorded + (if "Numbness Goes On" then "Age In Days"(seen) else 0.0) + 0.00000001)',
        "",
        f'define "Days Since Onset":\n  if {name(onset)} is null then null\n'
        f'  else Floor((duration in seconds between {name(onset)} and "Evaluation Instant") / 86400.0)',
    ]
    return "\n".join(lines)


def _tuple(value: str, view: str = "V") -> str:
    return f"Tuple {{ value: {value}, time: {view}.time, seen: {view}.seen }}"


def _riders(fact: FactDef, attribute: str) -> list[str]:
    """What the facial-numbness Observation carries about its side, duration and onset (rules.md §4);
    ``attribute`` is the laterality attribute's code."""
    numb = '("Numbness Observations") V'
    is_attribute = f'"Any Of"("Tokens"(C.code), "Tokens Of"({{ {attribute} }}))'
    if fact.kind == "side":
        side = _tuple('"Side"(C.value as FHIR.CodeableConcept)')
        body = _tuple('"Side"(V.observation.bodySite)')
        return [
            f"(Flatten({numb}\n"
            f"      where V.observation.component is not null\n"
            f"      return all ((V.observation.component) C where {is_attribute}\n"
            f"        return all {side}))) R\n      where R.value is not null",
            f'{numb} where "Side"(V.observation.bodySite) is not null\n      return all {body}',
        ]
    if fact.kind == "days":
        days = _tuple('"Days"(C.value as FHIR.integer, C.value as FHIR.Quantity)')
        coded = f'"Any Of"("Tokens"(C.code), "Tokens Of"({name(fact.name + " codes")}))'
        return [
            f"(Flatten({numb}\n"
            f"      where V.observation.component is not null\n"
            f"      return all ((V.observation.component) C\n"
            f"        where not {is_attribute}\n          and {coded}\n"
            f"        return all {days}))) R\n      where R.value is not null"
        ]
    if fact.kind == "date":
        start = '(V.observation.effective as FHIR.Period)."start"'
        onset = _tuple(f'"Instant"({start}.value)')
        return [f"{numb} where {start} is not null\n      return all {onset}"]
    return []


def test_expression(condition: Condition) -> str:
    """A rule's condition in three-valued CQL: ``null`` exactly when neckcheck's engine says UNKNOWN.

    ``in`` is never used for a set of sides: CQL's ``null in {...}`` is false, and unknown must stay unknown.
    """
    if isinstance(condition, Leaf):
        fact = name(condition.fact)
        if condition.present:
            return fact
        if condition.one_of:
            return "(" + " or ".join(f"{fact} = {string(side)}" for side in condition.one_of) + ")"
        return f"({fact} > {condition.greater_than})"
    joiner = " and " if condition.op == "all" else " or "
    return "(" + joiner.join(test_expression(t) for t in condition.terms) + ")"


def _top(condition: Condition) -> str:
    text = test_expression(condition)
    return text[1:-1] if isinstance(condition, Group) else text


def _rule(rule: Rule, table: RuleTable) -> str:
    orders = ", ".join(f"{table.orders[o.order].title} ({o.priority})" for o in rule.orders)
    lines = [
        comment(f"{rule.id}: {rule.title}. Risk {rule.risk}; proposes {orders}."),
        comment(rule.guideline),
        f"define {name(rule.id)}:\n  {_top(rule.when)}",
    ]
    return "\n".join(lines)


def _unknown_facts(condition: Condition, truth: str, indent: str = "  ") -> str:
    """The unknown facts whose answer could make ``condition`` (whose three-valued truth is ``truth``) true,
    in table order: what to ask (rules.md §3). A term that is already true or false adds nothing."""
    if isinstance(condition, Leaf):
        return f"if {truth} is null then {{ {string(condition.fact)} }} else List<String>{{}}"
    inner = indent + "  "
    terms = f",\n{inner}".join(_unknown_facts(t, test_expression(t), inner) for t in condition.terms)
    return f"if {truth} is null then Flatten({{\n{inner}{terms}\n{indent}}}) else List<String>{{}}"


def _outputs(table: RuleTable) -> str:
    symptoms = "\n    or ".join(f"{name(f.name)} is true" for f in table.facts.values() if f.symptom)
    by_risk = []
    for risk in reversed(RISKS):
        fired = [r for r in table.rules if r.risk == risk]
        if fired:
            test = " or ".join(f"{name(r.id)} is true" for r in fired)
            by_risk.append(f"    when {test} then {string(risk)}")
    rules_fired = ",\n    ".join(
        f"if {name(r.id)} is true then {string(r.id)} else null" for r in table.rules
    )
    holding = [_holds_back(rule) for rule in table.rules]
    held = "".join(f"\n    or {name(f'{r.id} holds the result back')}" for r in table.rules)
    asks = ",\n    ".join(
        f"if {name(r.id + ' holds the result back')} then {name(r.id + ' unknown facts')}"
        " else List<String>{}"
        for r in table.rules
    )
    unknowns = "\n\n".join(
        f"define {name(r.id + ' unknown facts')}:\n  {_unknown_facts(r.when, name(r.id))}"
        for r in table.rules
    )
    ranks = "\n".join(f"    when {string(p)} then {priority_rank(p)}" for p in PRIORITIES)
    levels = "\n".join(f"    when {string(r)} then {_level(r)}" for r in RISKS)
    return f"""\
// A symptom is any yes/no fact the table marks as one (not neck-treatment-tried).
define "Any Symptom Present":
  {symptoms}

// The highest risk of the rules that fire; when none fires, low if a symptom is present, else negligible.
define "Risk":
  case
{chr(10).join(by_risk)}
    when "Any Symptom Present" then 'low'
    else 'negligible'
  end

define "Rules Fired":
  ({{
    {rules_fired}
  }}) R where R is not null

// One order of a kind, at the most urgent priority of the rules that fired and propose it.
define "Proposed Orders":
  ({{
    {_proposed_orders(table)}
  }}) O where O is not null

define function "Priority Rank"(priority String):
  case priority
{ranks}
    else null
  end

// Negligible and low count as one level here (rules.md §3).
define function "Risk Level"(risk String):
  case risk
{levels}
    else null
  end

define function "Proposed At Least"(key String, priority String):
  exists (("Proposed Orders") O
    where O.key = key and "Priority Rank"(O.priority) >= "Priority Rank"(priority))

// Unknown is not "no" (rules.md §3). A rule holds the result back when unknown facts could make it fire
// (its truth is null) and, firing, it would raise the risk or add or hasten an order of a moderate- or
// high-risk rule. A high result is final: the urgent evaluation covers the rest.
{(chr(10) * 2).join(holding)}

define "Status":
  if "Unfinished Questionnaire Used"{held}
    then 'preliminary'
  else 'final'

{unknowns}

// The unknown facts in the conditions of the rules that hold the result back: what to ask before relying
// on the result.
define "Facts To Ask":
  distinct Flatten({{
    {asks}
  }})"""


def _level(risk: str) -> int:
    return max(risk_rank(risk), risk_rank("low"))


def _holds_back(rule: Rule) -> str:
    ident = name(f"{rule.id} holds the result back")
    raises = f'"Risk Level"("Risk") < {_level(rule.risk)}' if _level(rule.risk) > _level("low") else None
    serious = risk_rank(rule.risk) >= risk_rank("moderate")
    hastens = [
        f'not "Proposed At Least"({string(o.order)}, {string(o.priority)})' for o in rule.orders if serious
    ]
    terms = [t for t in (raises, *hastens) if t]
    if not terms:
        return f"// {rule.id} ({rule.risk}) never holds a result back.\ndefine {ident}:\n  false"
    either = "\n      or ".join(terms)
    return f"define {ident}:\n  \"Risk\" != 'high' and {name(rule.id)} is null\n    and ({either})"


def _proposed_orders(table: RuleTable) -> str:
    proposers: dict[str, list[tuple[Rule, str]]] = {}
    for rule in table.rules:
        for ref in rule.orders:
            proposers.setdefault(ref.order, []).append((rule, ref.priority))
    out = []
    for order, by in proposers.items():
        ranked = sorted(by, key=lambda rp: -priority_rank(rp[1]))
        fired = " or ".join(f"{name(r.id)} is true" for r, _ in by)
        if len({p for _, p in ranked}) == 1:
            priority = string(ranked[0][1])
        else:
            whens = " ".join(f"when {name(r.id)} is true then {string(p)}" for r, p in ranked[:-1])
            priority = f"case {whens} else {string(ranked[-1][1])} end"
        out.append(
            f"if {fired}\n      then Tuple {{ key: {string(order)}, priority: {priority} }}\n      else null"
        )
    return ",\n    ".join(out)
