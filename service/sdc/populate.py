"""``$populate`` (SDC STU 3 §Questionnaire Population, OperationDefinition Questionnaire-populate): the
patient's data in, a QuestionnaireResponse that asks only what is still missing out.

The data is read exactly as ``$assess`` reads it (the same Assessor, so the same codes, conflicts,
dates and evaluation time), and the response answers every fact it establishes. Completing the response
as it is and assessing it therefore gives the result the data gives (tests/sdc: every scenario, and a
hypothesis property). Two consequences, both deliberate:

- the duration is answered in days as of the evaluation time (``authored``), not left to be derived from
  the onset again later; the onset is answered beside it, for the reader;
- a fact recorded as explicitly unknown (``dataAbsentReason``, ``asked-unknown``) is left unanswered: a
  boolean item takes only valueBoolean, and an unanswered item is unknown too.

Encoding (documented in README.md and openapi.yaml):
- traceability: each answer carries one ``http://hl7.org/fhir/StructureDefinition/derivation-reference``
  extension per source resource, its ``reference`` sub-extension (valueReference) naming the Observation or
  QuestionnaireResponse, and for a QuestionnaireResponse a ``path`` sub-extension (valueString, FHIRPath)
  naming the item. SDC defines no extension for this; derivation-reference (FHIR extensions pack) is the
  standard "this element was taken from that resource" link and may sit on any element.
- holding back: an unanswered item whose fact keeps the result preliminary (rules.md §3, the facts the
  GuidanceResponse lists as data required) carries ``{canonicalBase}/StructureDefinition/needed-for-final``
  with valueBoolean true.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from service.assess import Assessment, Assessor, default_assessor
from service.codebook import CodeBook
from service.errors import InvalidInput, NotFound, Problem, Unprocessable
from service.fhir_values import fhir_datetime
from service.ids import evaluation_digest, stable_uuid
from service.intake.fhir_json import check_envelope
from service.intake.fields import JSON, obj, opt_obj, opt_str
from service.intake.request import Cardinality, parts
from service.output.artefacts import populate_operation_definition
from service.output.operation_outcome import operation_outcome
from service.output.questionnaire import questionnaire, questionnaire_canonical
from service.output.references import reference
from service.rules.facts import Evidence, Fact, FactValue
from service.rules.table import RuleTable

DERIVATION = "http://hl7.org/fhir/StructureDefinition/derivation-reference"
_PATIENT = re.compile(r"(?:^|/)((?:Patient|Group)/[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def needed_for_final_url(book: CodeBook) -> str:
    return f"{book.canonical_base}/StructureDefinition/needed-for-final"


@dataclass(frozen=True)
class Request:
    """A $populate request: what the Assessor reads (Parameters or a bare Bundle), and the SDC parts."""

    body: Any
    subject: JSON | None = None
    questionnaire: str | None = None


@dataclass(frozen=True)
class Populated:
    parameters: JSON  # the operation's answer: Parameters with ``response`` and, if any, ``issues``
    response: JSON
    assessment: Assessment


def read_request(body: Any, cardinality: Cardinality | None = None) -> Request:
    """Parameters parts ``subject`` (valueReference), ``bundle`` (resource), ``questionnaire`` (valueCanonical
    or valueUri; SDC STU 3 also names it ``canonical``) and ``asOf``, each at most once (``cardinality``);
    a bare Bundle is the data alone."""
    resource = obj(body, "request body")
    if resource.get("resourceType") != "Parameters":
        return Request(resource)
    check_envelope(resource, "Parameters")
    if cardinality is not None:
        cardinality.check(resource)
    subject: JSON | None = None
    canonical: str | None = None
    for name, part, loc in parts(resource):
        if name == "subject":
            subject = opt_obj(part, "valueReference", loc)
            if subject is None:
                raise InvalidInput(f"{loc}: subject needs a valueReference", loc)
        elif name in ("questionnaire", "canonical"):
            canonical = opt_str(part, "valueCanonical", loc) or opt_str(part, "valueUri", loc)
            if canonical is None:
                raise InvalidInput(f"{loc}: {name} needs a valueCanonical (the Questionnaire's url)", loc)
    return Request(resource, subject, canonical)


def check_questionnaire(canonical: str | None, table: RuleTable, book: CodeBook) -> None:
    """This server populates one Questionnaire: a canonical, if given, must name it (and its version)."""
    if canonical is None:
        return
    url, _, version = canonical.partition("|")
    ours = book.canonical("Questionnaire", book.raw["questionnaire"]["id"])
    if url != ours or (version and version != table.version):
        raise NotFound(
            f"Questionnaire {canonical[:120]!r} is not published here; this server populates "
            f"{ours}|{table.version}"
        )


def _subject_key(ref: JSON, loc: str) -> str | None:
    text = opt_str(ref, "reference", loc)
    if text:
        match = _PATIENT.search(text)
        return match.group(1) if match else text
    ident = opt_obj(ref, "identifier", loc)
    if ident:
        return f"identifier {opt_str(ident, 'system', loc)}|{opt_str(ident, 'value', loc)}"
    return None


def _check_subject(given: JSON | None, assessment: Assessment) -> None:
    if given is None:
        return
    loc = "Parameters.parameter.subject.valueReference"
    wanted, found = _subject_key(given, loc), _subject_key(assessment.intake.subject, "subject")
    if wanted is None:
        raise Unprocessable("the subject part names no patient (no reference, no identifier)", loc)
    if wanted.removeprefix("identifier None|") != (found or "").removeprefix("identifier None|"):
        raise Unprocessable(f"the data is about {found}, not the subject {wanted[:80]}", loc)


def _value(kind: str, value: FactValue, book: CodeBook) -> JSON:
    """The answer of our Questionnaire's item type for a known value (questionnaire.py's ``_ITEM_TYPE``)."""
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if kind == "side":
        return {"valueCoding": book.side_coding(str(value))}
    if isinstance(value, dt.date):
        return {"valueDate": value.isoformat()}
    if isinstance(value, float) and not value.is_integer():
        return {"valueDecimal": value}  # a decimal pain score from an Observation, read back as is
    if isinstance(value, int | float):
        return {"valueInteger": int(value)}
    raise TypeError(f"no answer type for {kind} value {value!r}")  # unreachable: intake gives these types


def _derivation(evidence: Evidence) -> JSON:
    parts: list[JSON] = [{"url": "reference", "valueReference": reference(evidence)}]
    if evidence.item:
        parts.append(
            {
                "url": "path",
                "valueString": f"QuestionnaireResponse.repeat(item).where(linkId='{evidence.item}')",
            }
        )
    return {"url": DERIVATION, "extension": parts}


def _answered(name: str, facts: dict[str, Fact]) -> Fact | None:
    """The fact to answer ``name`` with, or None to leave it unanswered."""
    fact = facts.get(name)
    if fact is None or fact.value is None:
        return None
    days = facts.get("facial-numbness-days")
    if isinstance(fact.value, dt.date) and (days is None or days.value is None):
        return None  # an onset beside an explicitly unknown duration: answering it would derive one
    return fact


def response_items(assessment: Assessment, table: RuleTable, book: CodeBook) -> list[JSON]:
    """The Questionnaire's groups and items, in its order, answered where the data establishes the fact."""
    facts, holding = assessment.intake.facts, set(assessment.decision.ask_about)
    groups = []
    for group in questionnaire(table, book)["item"]:
        items = []
        for question in group["item"]:
            name = question["linkId"]
            out: JSON = {"linkId": name, "text": question["text"]}
            fact = _answered(name, facts)
            if fact is not None:
                answer = _value(table.facts[name].kind, fact.value, book)
                out["answer"] = [{"extension": [_derivation(ev) for ev in fact.evidence], **answer}]
            elif name in holding:
                out = {"extension": [{"url": needed_for_final_url(book), "valueBoolean": True}], **out}
            items.append(out)
        groups.append({"linkId": group["linkId"], "text": group["text"], "item": items})
    return groups


def populate(
    body: Any,
    assessor: Assessor | None = None,
    as_of: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Populated:
    """Run $populate on a request body (Parameters, or the patient's Bundle alone)."""
    assessor = assessor or default_assessor()
    table, book = assessor.table, assessor.book
    once = Cardinality.of(populate_operation_definition(table, book), {"canonical": "questionnaire"})
    request = read_request(body, once)
    check_questionnaire(request.questionnaire, table, book)
    assessment = assessor.run(request.body, as_of=as_of, now=now, parts=once)
    _check_subject(request.subject, assessment)
    intake = assessment.intake
    when = fhir_datetime(intake.as_of)
    digest = evaluation_digest(assessment.input_hash, table.id, table.version, when)
    response: JSON = {
        "resourceType": "QuestionnaireResponse",
        "id": stable_uuid(digest, "populate/QuestionnaireResponse"),
        "identifier": book.identifier("questionnaire-response", f"{digest[:32]}-populate"),
        "questionnaire": questionnaire_canonical(book, table),
        "status": "in-progress",
        "subject": intake.subject,
    }
    if intake.encounter:
        response["encounter"] = intake.encounter
    response["authored"] = when
    response["item"] = response_items(assessment, table, book)
    parameters: list[JSON] = [{"name": "response", "resource": response}]
    if intake.skipped:
        notes = [Problem(s.reason, s.location) for s in intake.skipped]
        parameters.append(
            {"name": "issues", "resource": operation_outcome(notes, "informational", "information")}
        )
    return Populated({"resourceType": "Parameters", "parameter": parameters}, response, assessment)


def populate_parameters(body: Any, as_of: dt.datetime | None = None) -> JSON:
    """The library form: the $populate answer (Parameters) for a request body, with the packaged rules."""
    return populate(body, as_of=as_of).parameters
