"""The populated QuestionnaireResponse (SDC $populate): the published Questionnaire answered with every fact
the evaluation established, each answer citing its sources, and the facts that keep the result preliminary
marked. service/sdc/populate.py is the operation around it.

Completing the response as it is and assessing it gives the result the data gives (tests/sdc: every
scenario, and a hypothesis property). Two consequences, both deliberate:

- the duration is answered in days as of the evaluation time (``authored``), not left to be derived from
  the onset again later; the onset is answered beside it, for the reader;
- a fact recorded as explicitly unknown (``dataAbsentReason``, ``asked-unknown``) is left unanswered: a
  boolean item takes only valueBoolean, and an unanswered item is unknown too.

Encoding (documented in docs/integration/sdc.md and openapi.yaml):
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
from typing import Any

from service.codebook import CodeBook
from service.fhir_values import fhir_datetime
from service.ids import stable_uuid
from service.intake.bundle import Intake
from service.output.questionnaire import questionnaire, questionnaire_canonical
from service.output.references import reference
from service.rules.decide import Decision
from service.rules.facts import Evidence, Fact, FactValue
from service.rules.table import RuleTable

JSON = dict[str, Any]
DERIVATION = "http://hl7.org/fhir/StructureDefinition/derivation-reference"


def needed_for_final_url(book: CodeBook) -> str:
    return f"{book.canonical_base}/StructureDefinition/needed-for-final"


def populated_response(
    intake: Intake, decision: Decision, table: RuleTable, book: CodeBook, digest: str
) -> JSON:
    """The response, status in-progress, authored at the evaluation time; ids from the evaluation's digest."""
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
    response["authored"] = fhir_datetime(intake.as_of)
    response["item"] = _items(intake, decision, table, book)
    return response


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


def _items(intake: Intake, decision: Decision, table: RuleTable, book: CodeBook) -> list[JSON]:
    """The Questionnaire's groups and items, in its order, answered where the data establishes the fact."""
    facts, holding = intake.facts, set(decision.ask_about)
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
