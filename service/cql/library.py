"""The computable guideline as FHIR: the ``logic-library`` Library and its ``$data-requirements``.

The Library carries the CQL and its ELM (base64, as FHIR ``Attachment.data`` requires), read from the files
``make cql`` wrote into the package (``schemas/cql/``). They are published only while they are what the
loaded rule table and codes generate: a rule table changed without ``make cql``, or another table named by
``NECKCHECK_RULES_FILE``, must not be served logic that says something else (a 404 says why).

``$data-requirements`` (Clinical Reasoning, Library/$data-requirements) answers a ``module-definition``
Library: every Observation code and the QuestionnaireResponse the rules read, each with its lookback, derived
from the same table and codes as the CQL. It is what an EHR must map.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path
from typing import Any

from service.codebook import CodeBook
from service.cql.generate import LIBRARY_ID, LIBRARY_NAME, OUTPUTS, cql_text
from service.errors import NotFound
from service.output.guidance import data_requirement, questionnaire_item_url
from service.output.questionnaire import PUBLISHER, lookback_duration
from service.packaged import SCHEMAS_DIR
from service.rules.table import RuleTable

JSON = dict[str, Any]

CQL_DIR = SCHEMAS_DIR / "cql"
LIBRARY_TYPE = "http://terminology.hl7.org/CodeSystem/library-type"
CPG = "http://hl7.org/fhir/uv/cpg/StructureDefinition"
FHIR_MODEL_INFO = "http://fhir.org/guides/cqf/common/Library/FHIR-ModelInfo|4.0.1"
# what the CQL reads of each resource (DataRequirement.mustSupport)
OBSERVATION_ELEMENTS = ["status", "code", "value", "dataAbsentReason", "effective", "issued"]
NUMBNESS_ELEMENTS = [*OBSERVATION_ELEMENTS, "component", "bodySite"]
RESPONSE_ELEMENTS = ["questionnaire", "status", "authored", "item"]


def cql_file(version: str, directory: Path = CQL_DIR) -> Path:
    return directory / f"{LIBRARY_NAME}-{version}.cql"


def elm_file(version: str, directory: Path = CQL_DIR) -> Path:
    return directory / f"{LIBRARY_NAME}-{version}.elm.json"


def library_canonical(book: CodeBook) -> str:
    return book.canonical("Library", LIBRARY_ID)


@lru_cache(maxsize=8)  # the packaged files are immutable: read and encoded once per process
def _file(path: Path) -> tuple[str, str]:
    """The file's text and its base64."""
    data = path.read_bytes()
    return data.decode("utf-8"), base64.b64encode(data).decode("ascii")


def _packaged(table: RuleTable, book: CodeBook) -> tuple[str, str]:
    """The base64 of the packaged CQL and ELM, when they are what this table and these codes generate."""
    cql, elm = cql_file(table.version), elm_file(table.version)
    if not cql.is_file() or not elm.is_file():
        raise NotFound(f"no computable library is packaged for rule set {table.id} {table.version}")
    text, cql_data = _file(cql)
    if text != cql_text(table, book):
        raise NotFound(
            f"the packaged CQL library does not say what rule set {table.id} {table.version} says "
            "(the rule table or codes changed without `make cql`): not published"
        )
    return cql_data, _file(elm)[1]


def _parameters() -> list[JSON]:
    def param(name: str, use: str, kind: str, doc: str, many: bool = False) -> JSON:
        found = {"name": name, "use": use, "min": 0, "max": "*" if many else "1", "type": kind}
        return {**found, "documentation": doc}

    return [
        param("Evaluation Time", "in", "dateTime", "The evaluation time $assess decided; null: Now()"),
        param(
            "Explicit As Of", "in", "boolean", "True when asOf was given explicitly: later evidence unused"
        ),
        param("Risk", "out", "string", "negligible | low | moderate | high (risk-probability)"),
        param("Status", "out", "string", "final | preliminary"),
        param("Proposed Orders", "out", "Any", "Tuple { key String, priority String }", many=True),
        param("Rules Fired", "out", "string", "Ids of the rules that fired", many=True),
        param("Facts To Ask", "out", "string", "Fact names (Questionnaire linkIds) to ask about", many=True),
    ]


def data_requirements_of(table: RuleTable, book: CodeBook) -> list[JSON]:
    """Every Observation and QuestionnaireResponse the rules read, each fact with its codes, lookback and
    Questionnaire item; then the Symptom pattern and the QuestionnaireResponse itself."""
    out = []
    for fact in table.facts.values():
        requirement = data_requirement(fact.name, table, book)
        requirement["mustSupport"] = (
            NUMBNESS_ELEMENTS if fact.name == "facial-numbness" else OBSERVATION_ELEMENTS
        )
        window = lookback_duration(fact, book)
        if window is not None:  # none: a retired table from before lookbacks, any reading counts
            requirement["dateFilter"] = [{"path": "effective", "valueDuration": window}]
        out.append(requirement)
    findings = [c for f in table.facts.values() if f.kind == "bool" for c in book.fact_codings(f.name)]
    symptom = {k: book.raw["symptom"][k] for k in ("system", "code", "display")}
    out.append(
        {
            "type": "Observation",
            "mustSupport": ["status", "code", "value", "effective", "issued"],
            "codeFilter": [{"path": "code", "code": [symptom]}, {"path": "value", "code": findings}],
        }
    )
    questionnaire = book.canonical("Questionnaire", book.raw["questionnaire"]["id"])
    out.append(
        {
            "extension": [
                {
                    "url": questionnaire_item_url(book),
                    "extension": [{"url": "questionnaire", "valueCanonical": questionnaire}],
                }
            ],
            "type": "QuestionnaireResponse",
            "mustSupport": RESPONSE_ELEMENTS,
        }
    )
    return out


def logic_library(table: RuleTable, book: CodeBook) -> JSON:
    """The CPG computable Library: the CQL and its ELM, its parameters and data requirements."""
    cql_data, elm_data = _packaged(table, book)
    return {
        "resourceType": "Library",
        "id": LIBRARY_ID,
        "meta": {"profile": [f"{CPG}/cpg-computablelibrary"]},
        "url": library_canonical(book),
        "version": table.version,
        "name": LIBRARY_NAME,
        "title": f"{table.title} (computable)",
        "status": table.status,
        "experimental": False,
        "type": {"coding": [{"system": LIBRARY_TYPE, "code": "logic-library"}]},
        "date": table.date,
        "publisher": PUBLISHER,
        "description": (
            f"Rule set {table.id} {table.version} in CQL (FHIR 4.0.1), generated from the same rule table "
            "neckcheck runs, with its ELM from the reference translator. Outputs: "
            + ", ".join(f'"{o}"' for o in OUTPUTS)
            + '. Pass "Evaluation Time" (the time $assess evaluated at) and "Explicit As Of".'
        ),
        **table.lifecycle.metadata(),
        "relatedArtifact": [{"type": "depends-on", "resource": FHIR_MODEL_INFO}],
        "parameter": _parameters(),
        "dataRequirement": data_requirements_of(table, book),
        "content": [
            {"contentType": "text/cql", "data": cql_data},
            {"contentType": "application/elm+json", "data": elm_data},
        ],
    }


def data_requirements(table: RuleTable, book: CodeBook) -> JSON:
    """Library/$data-requirements: a ``module-definition`` Library of what the logic library reads."""
    _packaged(table, book)  # only for a library that is published
    return {
        "resourceType": "Library",
        "status": "active",
        "type": {"coding": [{"system": LIBRARY_TYPE, "code": "module-definition"}]},
        "date": table.date,
        "relatedArtifact": [
            {"type": "depends-on", "resource": f"{library_canonical(book)}|{table.version}"},
            {"type": "depends-on", "resource": FHIR_MODEL_INFO},
        ],
        "parameter": _parameters(),
        "dataRequirement": data_requirements_of(table, book),
    }
