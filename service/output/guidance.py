"""Decision → GuidanceResponse (FHIR R4 Clinical Reasoning, §12.21): the evaluation as a whole.

The RiskAssessment says what the rules concluded; the GuidanceResponse says which knowledge module ran
(the PlanDefinition, with its version), whether its answer is complete (``success``) or still needs data
(``data-required``), and exactly which data: one ``dataRequirement`` per fact to ask, with the fact's codes
and the Questionnaire item that asks it. An EHR can act on that without reading prose.

Encoding choices, where R4 leaves no element for them:
- R4 ``GuidanceResponse.result`` may reference only CarePlan or RequestGroup, so the RiskAssessment and the
  proposed ServiceRequests are named by ``outputParameters``: a contained Parameters with one
  ``riskAssessment`` part and one ``serviceRequest`` part per order (valueReference).
- The Questionnaire item of a data requirement is a complex extension on the DataRequirement,
  ``{canonicalBase}/StructureDefinition/questionnaire-item`` with ``questionnaire`` (valueCanonical, with
  ``|version``) and ``linkId`` (valueString).
"""

from __future__ import annotations

from typing import Any

from service.codebook import CodeBook
from service.fhir_values import fhir_datetime
from service.ids import stable_uuid
from service.intake.bundle import Intake
from service.output.questionnaire import item_codings, questionnaire_canonical
from service.output.rationale import data_required
from service.output.resources import Ids, plan_definition_canonical
from service.rules.decide import Decision
from service.rules.table import RuleTable

JSON = dict[str, Any]
OUTPUT_ID = "output"
NOTES_ID = "input-notes"


def questionnaire_item_url(book: CodeBook) -> str:
    return f"{book.canonical_base}/StructureDefinition/questionnaire-item"


def data_requirement(fact: str, table: RuleTable, book: CodeBook) -> JSON:
    """What to ask about ``fact``: an Observation with one of its codes, or its Questionnaire item."""
    return {
        "extension": [
            {
                "url": questionnaire_item_url(book),
                "extension": [
                    {"url": "questionnaire", "valueCanonical": questionnaire_canonical(book, table)},
                    {"url": "linkId", "valueString": fact},
                ],
            }
        ],
        "type": "Observation",
        "codeFilter": [{"path": "code", "code": item_codings(book, fact)}],
    }


def _entry_reference(resource: JSON, book: CodeBook, kind: str) -> JSON:
    """By ``urn:uuid`` (resolves inside the output Bundle, and a transaction rewrites it on create) and by
    identifier (holds wherever the resource ends up)."""
    ident = resource["identifier"][0]
    return {
        "reference": f"urn:uuid:{resource['id']}",
        "type": resource["resourceType"],
        "identifier": book.identifier(kind, ident["value"]),
    }


def guidance_identifier(ids: Ids) -> str:
    """The GuidanceResponse's identifier value, known before (or without) building it: audit records name
    it for a hook call, whose answer has no GuidanceResponse."""
    return f"{ids.value}-guidance"


def guidance_response(
    decision: Decision,
    intake: Intake,
    table: RuleTable,
    book: CodeBook,
    ids: Ids,
    input_hash: str,
    outputs: list[JSON],
    notes: JSON | None,
) -> JSON:
    """``outputs``: the RiskAssessment then the ServiceRequests. ``notes``: a Reference to the informational
    OperationOutcome of a collection, or the OperationOutcome itself to contain (a transaction creates only
    what it holds, and an OperationOutcome is not stored)."""
    risk, *orders = outputs
    parameters = [
        {"name": "riskAssessment", "valueReference": _entry_reference(risk, book, "risk-assessment")}
    ]
    parameters += [
        {"name": "serviceRequest", "valueReference": _entry_reference(o, book, "service-request")}
        for o in orders
    ]
    contained: list[JSON] = [{"resourceType": "Parameters", "id": OUTPUT_ID, "parameter": parameters}]
    resource: JSON = {
        "resourceType": "GuidanceResponse",
        "id": stable_uuid(ids.digest, "GuidanceResponse"),
        "contained": contained,
        "requestIdentifier": {"system": f"{book.canonical_base}/identifier/request", "value": input_hash},
        "identifier": [book.identifier("guidance-response", guidance_identifier(ids))],
        "moduleCanonical": plan_definition_canonical(book, table),
        "status": "success" if decision.final else "data-required",
        "subject": intake.subject,
    }
    if intake.encounter:
        resource["encounter"] = intake.encounter
    resource["occurrenceDateTime"] = fhir_datetime(intake.as_of)
    if notes is not None:
        if notes.get("resourceType") == "OperationOutcome":
            contained.append({**notes, "id": NOTES_ID})
            resource["evaluationMessage"] = [{"reference": f"#{NOTES_ID}"}]
        else:
            resource["evaluationMessage"] = [notes]
    resource["outputParameters"] = {"reference": f"#{OUTPUT_ID}"}
    if not decision.final:
        resource["note"] = [{"text": data_required(decision, intake, table)}]
        if decision.ask_about:
            resource["dataRequirement"] = [data_requirement(f, table, book) for f in decision.ask_about]
    return resource
