"""The published FHIR artefacts, generated from the rule table and codes so they cannot drift from the engine.

Questionnaire (linkIds = fact names; built in questionnaire.py), PlanDefinition (one action per rule, each
condition the CQL definition of the rule in the Library of service/cql),
OperationDefinitions of $assess and $populate, and the server's CapabilityStatement.
"""

from __future__ import annotations

from typing import Any

from service.codebook import CodeBook
from service.cql.generate import LIBRARY_ID
from service.output.questionnaire import PUBLISHER, questionnaire
from service.rules.table import RuleTable, describe

JSON = dict[str, Any]

__all__ = [
    "capability_statement",
    "operation_definition",
    "plan_definition",
    "populate_operation_definition",
    "questionnaire",
]


def plan_definition(table: RuleTable, book: CodeBook) -> JSON:
    pid = book.raw["planDefinition"]["id"]
    actions = []
    for rule in table.rules:
        actions.append(
            {
                "id": rule.id,
                "title": rule.title,
                "description": rule.guideline,
                "priority": max(
                    (o.priority for o in rule.orders), key=("routine", "urgent", "asap", "stat").index
                ),
                "condition": [
                    {
                        "kind": "applicability",
                        "expression": {  # CPG computable: the definition of the same name in the Library
                            "description": describe(rule.when, table),
                            "language": "text/cql-identifier",
                            "expression": rule.id,
                        },
                    }
                ],
                "action": [
                    {
                        "id": f"{rule.id}-{o.order}",
                        "title": table.orders[o.order].title,
                        "priority": o.priority,
                        "code": [{"coding": book.order_codings(o.order)}],
                    }
                    for o in rule.orders
                ],
                "documentation": [
                    {"type": "documentation", "display": f"risk {rule.risk}; card {rule.card}"}
                ],
            }
        )
    return {
        "resourceType": "PlanDefinition",
        "id": pid,
        "meta": {"profile": ["http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-computableplandefinition"]},
        "url": book.canonical("PlanDefinition", pid),
        "version": table.version,
        "name": "NeckcheckEscalation",
        "title": table.title,
        "status": table.status,
        "date": table.date,
        "publisher": PUBLISHER,
        "description": (
            f"Rule set {table.id} {table.version}. Highest risk wins; every rule that fires is reported. "
            "Unknown facts are never read as absent: a result that could still escalate is preliminary. "
            + recency_sentence(table)
        ),
        **table.lifecycle.metadata(),
        # the Library is generated for tables with lookbacks only (a retired 1.0.0 has none): no dangling link
        **(
            {"library": [f"{book.canonical('Library', LIBRARY_ID)}|{table.version}"]}
            if _computable(table)
            else {}
        ),
        "action": actions,
    }


def _computable(table: RuleTable) -> bool:
    return all(fact.lookback is not None for fact in table.facts.values())


def recency_sentence(table: RuleTable) -> str:
    """The lookbacks in a sentence, grouped by window, most used window last (rules.md §1, recency)."""
    by_window: dict[str, list[str]] = {}
    for fact in table.facts.values():
        if fact.lookback is None:
            return "No fact has a lookback (a rule set from before evidence recency): any reading counts."
        by_window.setdefault(str(fact.lookback), []).append(fact.label)
    windows = sorted(by_window.items(), key=lambda item: len(item[1]))
    parts = [f"{', '.join(labels)}: {window}" for window, labels in windows]
    return (
        "A reading older than its fact's lookback is stale: neither present nor absent, listed as not used ("
        + "; ".join(parts)
        + ")."
    )


def operation_definition(table: RuleTable, book: CodeBook) -> JSON:
    return {
        "resourceType": "OperationDefinition",
        "id": "assess",
        "url": book.canonical("OperationDefinition", "assess"),
        "version": table.version,
        "name": "Assess",
        "title": "Assess facial numbness with neck pain",
        "status": "active",
        "kind": "operation",
        "date": table.date,
        "publisher": PUBLISHER,
        "description": (
            "Runs the neckcheck escalation rules on one patient's Observations and/or "
            "QuestionnaireResponse and returns a RiskAssessment with proposed ServiceRequests "
            "(draft proposals, never active orders)."
        ),
        "affectsState": False,
        "code": "assess",
        "system": True,
        "type": False,
        "instance": False,
        "parameter": [
            {
                "name": "bundle",
                "use": "in",
                "min": 1,
                "max": "1",
                "type": "Bundle",
                "documentation": "One patient's Observations and/or QuestionnaireResponse",
            },
            {
                "name": "asOf",
                "use": "in",
                "min": 0,
                "max": "1",
                "type": "dateTime",
                "documentation": "Evaluation time; default Bundle.timestamp, then the server clock",
            },
            {
                "name": "_output",
                "use": "in",
                "min": 0,
                "max": "1",
                "type": "code",
                "documentation": "collection (default) or transaction (conditional creates)",
            },
            {
                "name": "return",
                "use": "out",
                "min": 1,
                "max": "1",
                "type": "Bundle",
                "documentation": "RiskAssessment and proposed ServiceRequests",
            },
        ],
    }


def populate_operation_definition(table: RuleTable, book: CodeBook) -> JSON:
    """SDC's Questionnaire-populate as this server implements it (a ``bundle`` of data instead of SDC's
    ``context``, so the same input as $assess populates the form)."""
    qid = book.raw["questionnaire"]["id"]

    def param(name: str, use: str, low: int, kind: str, doc: str) -> JSON:
        return {"name": name, "use": use, "min": low, "max": "1", "type": kind, "documentation": doc}

    return {
        "resourceType": "OperationDefinition",
        "id": "populate",
        "url": book.canonical("OperationDefinition", "populate"),
        "version": table.version,
        "name": "Populate",
        "title": "Populate the screening Questionnaire from the patient's data",
        "status": "active",
        "kind": "operation",
        "date": table.date,
        "publisher": PUBLISHER,
        "description": (
            f"Answers every item of Questionnaire {qid} that the patient's data establishes (read as $assess "
            "reads it), each answer citing its source resource (derivation-reference extension), and leaves "
            "the rest unanswered; unanswered items that keep the result preliminary carry the extension "
            f"{book.canonical_base}/StructureDefinition/needed-for-final. Completing the response as is and "
            "assessing it gives the result the data gives."
        ),
        "affectsState": False,
        "code": "populate",
        "base": "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate",
        "resource": ["Questionnaire"],
        "system": False,
        "type": True,
        "instance": True,
        "parameter": [
            param("questionnaire", "in", 0, "canonical", f"Type level: the Questionnaire, default {qid}"),
            param("subject", "in", 0, "Reference", "The patient; must be the subject of the data"),
            param("bundle", "in", 1, "Bundle", "The patient's Observations and/or QuestionnaireResponses"),
            param("asOf", "in", 0, "dateTime", "Evaluation time, as for $assess"),
            param("response", "out", 1, "QuestionnaireResponse", "status in-progress; known facts answered"),
            param("issues", "out", 0, "OperationOutcome", "Input not used, or not used as given"),
        ],
    }


def capability_statement(table: RuleTable, book: CodeBook, software_version: str) -> JSON:
    def read(rtype: str) -> JSON:
        return {"type": rtype, "interaction": [{"code": "read"}]}

    return {
        "resourceType": "CapabilityStatement",
        "id": "neckcheck",
        "status": "active",
        "date": table.date,
        "publisher": PUBLISHER,
        "kind": "instance",
        "software": {"name": "neckcheck", "version": software_version},
        "implementation": {"description": f"neckcheck, rule set {table.id} {table.version}"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        **read("Questionnaire"),
                        "operation": [
                            {
                                "name": "populate",
                                "definition": book.canonical("OperationDefinition", "populate"),
                            }
                        ],
                    },
                    read("PlanDefinition"),
                    read("Measure"),
                    read("OperationDefinition"),
                    {
                        **read("Library"),
                        "operation": [
                            {
                                "name": "data-requirements",
                                "definition": "http://hl7.org/fhir/OperationDefinition/Library-data-requirements",
                            }
                        ],
                    },
                ],
                "operation": [
                    {"name": "assess", "definition": book.canonical("OperationDefinition", "assess")}
                ],
            }
        ],
    }
