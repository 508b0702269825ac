"""The library entry point: ``assess(bundle) -> output Bundle``. HTTP and the CLI are thin shells over it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from service.codebook import DEFAULT_CODES, CodeBook, check_against, load_codebook
from service.ids import content_hash
from service.intake.bundle import Intake, read_bundle
from service.intake.request import Cardinality, unwrap
from service.output.artefacts import operation_definition
from service.output.bundle import output_bundle
from service.output.questionnaire import check_layout
from service.rules.decide import Decision, decide
from service.rules.table import DEFAULT_TABLE, RuleTable, load_table


@dataclass(frozen=True)
class Assessment:
    """Everything one evaluation produced: the intake, the decision (with its trace) and the FHIR output."""

    intake: Intake
    decision: Decision
    bundle: dict[str, Any]
    input_hash: str  # SHA-256 of the assessed Bundle's canonical JSON


@dataclass(frozen=True)
class Assessor:
    """The engine with its rule table and codes loaded and cross-checked once."""

    table: RuleTable
    book: CodeBook
    max_entries: int = 1000
    # the parts $assess takes once, from its published OperationDefinition (made once, in __post_init__)
    parts: Cardinality = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", Cardinality.of(operation_definition(self.table, self.book)))

    @classmethod
    def load(
        cls, rules: Path = DEFAULT_TABLE, codes: Path = DEFAULT_CODES, max_entries: int = 1000
    ) -> Assessor:
        table, book = load_table(rules), load_codebook(codes)
        check_against(book, table)
        check_layout(table)  # the Questionnaire must never hide a fact a rule needs
        return cls(table, book, max_entries)

    def run(
        self,
        body: Any,
        as_of: dt.datetime | None = None,
        output: str | None = None,
        now: dt.datetime | None = None,
        parts: Cardinality | None = None,
    ) -> Assessment:
        """``parts``: the parts taken once, when not $assess's ($populate reads the same body)."""
        bundle, given_as_of, given_output = unwrap(body, parts or self.parts)
        if as_of is not None and as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=dt.UTC)
        intake = read_bundle(bundle, self.book, self.table, as_of or given_as_of, self.max_entries, now)
        decision = decide(intake.facts, self.table, in_progress=intake.in_progress)
        input_hash = content_hash(bundle)
        mode = output or given_output or "collection"
        out = output_bundle(input_hash, decision, intake, self.table, self.book, mode)
        return Assessment(intake, decision, out, input_hash)


def assess(
    bundle: dict[str, Any], as_of: dt.datetime | None = None, output: str = "collection"
) -> dict[str, Any]:
    """Assess one patient's Bundle (or a $assess Parameters) with the default rule table.

    Raises a ``service.errors.NeckcheckError`` subclass when the input cannot be assessed; its
    ``status`` and ``problems`` say why.
    """
    return default_assessor().run(bundle, as_of, output).bundle


@cache
def default_assessor() -> Assessor:
    """The packaged rule table and codes, loaded and cross-checked once per process (immutable data)."""
    return Assessor.load()
