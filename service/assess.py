"""The engine's one door: ``Assessor.run(body) -> Assessment``, and ``assess(bundle) -> output Bundle``.

Front ends (HTTP, CDS Hooks, SDC, the clinician app, screening, the CLI) use the engine through this module:
the Assessment's face below is everything they read of an evaluation, as plain typed values, and its FHIR
renderings. The intake, the rules and the output behind it are the engine's own (tests/test_import_graph.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from service.codebook import DEFAULT_CODES, CodeBook, check_against, load_codebook
from service.errors import Problem
from service.fhir_values import fhir_datetime
from service.ids import content_hash, evaluation_digest
from service.intake.bundle import Intake, read_bundle, subject_key
from service.intake.json_body import parse_json
from service.intake.request import Cardinality, Request, bundle_of, read_request
from service.intake.strict import validate_strictly
from service.output.artefacts import operation_definition, populate_operation_definition
from service.output.bundle import OUTPUTS, Rendered, check_output, output_bundle, render
from service.output.operation_outcome import operation_outcome
from service.output.populated import populated_response
from service.output.questionnaire import check_layout
from service.output.rationale import data_required
from service.output.references import reference
from service.rules.decide import Decision, decide
from service.rules.facts import Evidence, FactValue
from service.rules.table import RuleTable, load_table

# what front ends take from the engine besides the Assessment: reading a request body as $assess does, and
# grouping resources by patient as $assess does (population screening)
__all__ = [
    "OUTPUTS",
    "Assessment",
    "Assessor",
    "FactValue",
    "Finding",
    "NotUsed",
    "Order",
    "Question",
    "Request",
    "RuleFired",
    "Source",
    "assess",
    "default_assessor",
    "parse_json",
    "subject_key",
]

JSON = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """A resource (and, for a QuestionnaireResponse, the item) a value came from, with its clinical time."""

    resource_type: str
    reference: str  # "Observation/1", a fullUrl, or a description when the resource has neither
    item: str | None
    resolvable: bool
    time: dt.datetime | None

    @property
    def fhir_reference(self) -> JSON:
        """The FHIR Reference to cite it by (a display only when it cannot be resolved)."""
        return reference(Evidence(self.resource_type, self.reference, self.item, self.resolvable))


@dataclass(frozen=True)
class Finding:
    """One fact as the evaluation read it: its value (``None``: recorded as not known) and where from."""

    fact: str
    label: str
    kind: str  # bool | side | days | date | score
    value: FactValue
    sources: tuple[Source, ...]
    conflict: str | None  # how conflicting records were resolved, if they were

    @property
    def time(self) -> dt.datetime | None:
        """The latest clinical time among its sources."""
        times = [s.time for s in self.sources if s.time is not None]
        return max(times) if times else None


@dataclass(frozen=True)
class RuleFired:
    id: str
    title: str
    outcome: str  # the action, in the words of the card's summary
    guideline: str  # the article's guideline it implements
    risk: str
    card: str  # info | warning | critical
    sources: tuple[Source, ...]  # what made it fire


@dataclass(frozen=True)
class Order:
    """A proposed order: its key in codes.json, priority, the rules that asked for it, and its draft
    ServiceRequest as the FHIR renderings carry it."""

    key: str
    priority: str
    title: str
    rules: tuple[str, ...]
    codes: tuple[JSON, ...]
    resource: JSON


@dataclass(frozen=True)
class Question:
    """A fact to ask before relying on a preliminary result: its linkId in the published Questionnaire."""

    fact: str
    label: str
    question: str
    codes: tuple[JSON, ...]
    recorded_present: dt.date | None  # an old reading said present (rules.md §1: ask again)

    @property
    def link_id(self) -> str:
        return self.fact


@dataclass(frozen=True)
class NotUsed:
    """Input not used, or not used as given, and why (the informational OperationOutcome's issues)."""

    where: str
    why: str


@dataclass(frozen=True)
class Assessment:
    """Everything one evaluation produced. Front ends read its face (the properties below); ``intake`` and
    ``decision`` are the engine's own record of how it got there."""

    intake: Intake
    decision: Decision
    output: str  # the FHIR rendering asked for: "collection" or "transaction" (checked by Assessor.run)
    input_hash: str  # SHA-256 of the assessed Bundle's canonical JSON
    table: RuleTable = field(repr=False, compare=False)
    book: CodeBook = field(repr=False, compare=False)

    @property
    def subject(self) -> str | None:
        """``Patient/<id>`` (or the reference as given), or None for a patient named by identifier only."""
        found: str | None = self.intake.subject.get("reference")
        return found

    @property
    def subject_reference(self) -> JSON:
        return self.intake.subject

    @property
    def encounter(self) -> JSON | None:
        return self.intake.encounter

    @property
    def as_of(self) -> dt.datetime:
        return self.intake.as_of

    @property
    def as_of_source(self) -> str:
        """``asOf`` (given explicitly), ``Bundle.timestamp`` or ``the server clock`` (rules.md §1)."""
        return self.intake.as_of_source

    @property
    def rule_set(self) -> str:
        return f"{self.decision.table_id} {self.decision.table_version}"

    @property
    def final(self) -> bool:
        return self.decision.final

    @property
    def status(self) -> str:
        return "final" if self.decision.final else "preliminary"

    @property
    def risk(self) -> str:
        return self.decision.risk

    @property
    def outcome(self) -> JSON:
        """What two evaluations are compared on: status, risk, rule ids fired, orders (key -> priority);
        screening's results.ndjson, ``rules diff`` and shadow mode all use these four."""
        return {
            "status": self.status,
            "risk": self.risk,
            "rules": [r.id for r in self.rules_fired],
            "orders": {o.key: o.priority for o in self.orders},
        }

    @property
    def in_progress(self) -> bool:
        """An unfinished questionnaire gave an answer used: the result stays preliminary."""
        return self.decision.in_progress

    @cached_property
    def rules_fired(self) -> tuple[RuleFired, ...]:
        """Most serious first, as the rule table orders them."""
        return tuple(
            RuleFired(
                r.rule.id,
                r.rule.title,
                r.rule.outcome,
                r.rule.guideline,
                r.rule.risk,
                r.rule.card,
                self._sources(r.evidence),
            )
            for r in self.decision.fired
        )

    @cached_property
    def orders(self) -> tuple[Order, ...]:
        """Each with its ServiceRequest, which the renderings carry in this order (output/bundle.py)."""
        return tuple(
            Order(
                o.key,
                o.priority,
                self.table.orders[o.key].title,
                o.rules,
                tuple(self.book.order_codings(o.key)),
                sr,
            )
            for o, sr in zip(self.decision.orders, self.service_requests, strict=True)
        )

    @cached_property
    def to_ask(self) -> tuple[Question, ...]:
        """The facts whose answers could still change the result (rules.md §3), in the order to ask."""
        present = {r.fact: r.when for r in self.intake.stale if r.value is True}
        out = []
        for name in self.decision.ask_about:
            fact = self.table.facts[name]
            seen = present.get(name)
            out.append(
                Question(
                    name,
                    fact.label,
                    fact.question,
                    tuple(self.book.fact_codings(name)),
                    seen.date() if seen is not None else None,
                )
            )
        return tuple(out)

    @property
    def why_preliminary(self) -> str:
        """Why the result is preliminary and what to ask, in a clinician's words ("" when final)."""
        return data_required(self.decision, self.intake, self.table)

    @property
    def conflicts(self) -> tuple[str, ...]:
        return self.intake.conflicts

    @cached_property
    def findings(self) -> tuple[Finding, ...]:
        """Every fact the evaluation read, in the order first read; stale readings are not among them."""
        return tuple(
            Finding(
                name,
                self.table.facts[name].label,
                self.table.facts[name].kind,
                fact.value,
                self._sources(fact.evidence),
                fact.conflict,
            )
            for name, fact in self.intake.facts.items()
            if name in self.table.facts
        )

    @property
    def not_used(self) -> tuple[NotUsed, ...]:
        return tuple(NotUsed(s.location, s.reason) for s in self.intake.skipped)

    @property
    def stale_facts(self) -> tuple[str, ...]:
        """The fact of each reading older than its lookback (rules.md §1), one entry per reading."""
        return tuple(r.fact for r in self.intake.stale)

    # --- FHIR renderings -------------------------------------------------------------------------------

    # Built on first use: a CDS card needs the RiskAssessment and the ServiceRequests, never the Bundle.
    @cached_property
    def _rendered(self) -> Rendered:
        return render(self.input_hash, self.decision, self.intake, self.table, self.book, self.output)

    @cached_property
    def bundle(self) -> JSON:
        """The FHIR answer asked for: a collection, or a transaction of conditional creates."""
        return output_bundle(
            self._rendered, self.input_hash, self.decision, self.intake, self.table, self.book, self.output
        )

    @property
    def risk_assessment(self) -> JSON:
        return self._rendered.resources[0]

    @property
    def service_requests(self) -> list[JSON]:
        return self._rendered.resources[1:]

    @property
    def output_identifiers(self) -> list[str]:
        """The identifier values of every resource the FHIR answer creates (what an audit record names)."""
        return self._rendered.identifiers

    @property
    def identifier(self) -> str:
        """The evaluation's identifier value (the RiskAssessment's): same input, rules and time, same id."""
        value: str = self.risk_assessment["identifier"][0]["value"]
        return value

    @property
    def digest(self) -> str:
        """The whole evaluation digest the output's ids derive from (``service.ids.evaluation_digest``)."""
        return evaluation_digest(
            self.input_hash, self.table.id, self.table.version, fhir_datetime(self.as_of)
        )

    def populated_response(self) -> JSON:
        """The published Questionnaire answered with every fact the data establishes (SDC $populate)."""
        return populated_response(self.intake, self.decision, self.table, self.book, self.digest)

    def not_used_outcome(self) -> JSON | None:
        """The informational OperationOutcome of input not used, or None when everything was used."""
        if not self.intake.skipped:
            return None
        notes = [Problem(s.reason, s.location) for s in self.intake.skipped]
        return operation_outcome(notes, "informational", "information")

    def _sources(self, evidence: tuple[Evidence, ...]) -> tuple[Source, ...]:
        times = self.intake.times
        return tuple(
            Source(e.resource_type, e.reference, e.item, e.resolvable, times.get(e.reference))
            for e in evidence
        )


@dataclass(frozen=True)
class Assessor:
    """The engine with its rule table and codes loaded and cross-checked once."""

    table: RuleTable
    book: CodeBook
    max_entries: int = 1000
    # the parts each operation takes once, from its published OperationDefinition (made in __post_init__)
    parts: dict[str, Cardinality] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        once = {
            "assess": Cardinality.of(operation_definition(self.table, self.book)),
            "populate": Cardinality.of(
                populate_operation_definition(self.table, self.book), {"canonical": "questionnaire"}
            ),
        }
        object.__setattr__(self, "parts", once)

    @classmethod
    def load(
        cls, rules: Path | None = None, codes: Path = DEFAULT_CODES, max_entries: int = 1000
    ) -> Assessor:
        """``rules`` None: the table the service runs by default (the newest active version in effect)."""
        table, book = load_table(rules), load_codebook(codes)
        check_against(book, table)
        check_layout(table)  # the Questionnaire must never hide a fact a rule needs
        return cls(table, book, max_entries)

    def request(self, body: Any, operation: str = "assess") -> Request:
        """An operation's request body read (a Parameters, or the Bundle alone), its parts checked."""
        return read_request(body, self.parts[operation])

    def run(
        self,
        body: Any,
        as_of: dt.datetime | None = None,
        output: str | None = None,
        now: dt.datetime | None = None,
        operation: str = "assess",
        strict: bool = False,
    ) -> Assessment:
        """``operation``: whose Parameters ``body`` is ($populate's read the same way); ``strict``: also
        validate every resource against the FHIR R4 model first (``_validate=strict``)."""
        if strict:
            validate_strictly(body)
        request = self.request(body, operation)
        bundle = bundle_of(request)
        if as_of is not None and as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=dt.UTC)
        intake = read_bundle(bundle, self.book, self.table, as_of or request.as_of, self.max_entries, now)
        decision = decide(intake.facts, self.table, in_progress=intake.in_progress)
        input_hash = content_hash(bundle)
        mode = check_output(output or request.output or "collection")
        return Assessment(intake, decision, mode, input_hash, self.table, self.book)


def assess(bundle: JSON, as_of: dt.datetime | None = None, output: str = "collection") -> JSON:
    """Assess one patient's Bundle (or a $assess Parameters) with the default rule table.

    Raises a ``service.errors.NeckcheckError`` subclass when the input cannot be assessed; its
    ``status`` and ``problems`` say why.
    """
    return default_assessor().run(bundle, as_of, output).bundle


@cache
def default_assessor() -> Assessor:
    """The packaged rule table and codes, loaded and cross-checked once per process (immutable data)."""
    return Assessor.load()
