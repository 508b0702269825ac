"""The computable guideline as published: the Library (CQL + ELM), the computable PlanDefinition that names
it, ``$data-requirements``, the CapabilityStatement, and the CDS Hooks prefetch that must ask for what it
lists."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.codebook import load_codebook
from service.cql.library import CQL_DIR, cql_file, elm_file
from service.reader.searches import OBSERVATIONS, RESPONSES, prefetch_templates
from service.rules.table import DEFAULT_TABLE, load_table
from tests.support import CODES, validate_fhir

TABLE = load_table()
LIBRARY = "/fhir/Library/neckcheck-escalation-logic"
CANONICAL = "https://neckcheck.org/fhir/Library/neckcheck-escalation-logic"


def get(client: FlaskClient, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/fhir+json"
    return response.get_json()


def test_the_library_carries_the_cql_and_its_elm(client: FlaskClient) -> None:
    library = get(client, LIBRARY)
    validate_fhir(library)
    assert library["type"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/library-type", "code": "logic-library"}
    ]
    assert (library["url"], library["version"], library["name"]) == (
        CANONICAL,
        TABLE.version,
        "NeckcheckEscalation",
    )
    content = {c["contentType"]: base64.b64decode(c["data"]) for c in library["content"]}
    assert set(content) == {"text/cql", "application/elm+json"}
    assert content["text/cql"] == cql_file(TABLE.version, CQL_DIR).read_bytes()
    assert content["application/elm+json"] == elm_file(TABLE.version, CQL_DIR).read_bytes()
    elm = json.loads(content["application/elm+json"])["library"]
    assert elm["identifier"] == {"id": "NeckcheckEscalation", "version": TABLE.version}
    outputs = {p["name"] for p in library["parameter"] if p["use"] == "out"}
    assert outputs == {"Risk", "Status", "Proposed Orders", "Rules Fired", "Facts To Ask"}
    assert {p["name"] for p in library["parameter"] if p["use"] == "in"} == {
        "Evaluation Time",
        "Explicit As Of",
    }


def test_the_plan_definition_is_computable_and_names_the_library(client: FlaskClient) -> None:
    plan = get(client, "/fhir/PlanDefinition/neckcheck-escalation")
    validate_fhir(plan)
    assert plan["library"] == [f"{CANONICAL}|{TABLE.version}"]
    assert plan["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-computableplandefinition"
    ]
    elm = json.loads(elm_file(TABLE.version, CQL_DIR).read_text())
    defined = {d["name"] for d in elm["library"]["statements"]["def"]}
    for action, rule in zip(plan["action"], TABLE.rules, strict=True):
        (condition,) = action["condition"]
        expression = condition["expression"]
        assert expression["language"] == "text/cql-identifier"
        assert expression["expression"] == rule.id in defined
        assert expression["description"].startswith("(")  # the prose, kept for a reader


def test_data_requirements_list_every_code_the_rules_read(client: FlaskClient) -> None:
    answer = get(client, f"{LIBRARY}/$data-requirements")
    validate_fhir(answer)
    assert answer["type"]["coding"][0]["code"] == "module-definition"
    assert {"type": "depends-on", "resource": f"{CANONICAL}|{TABLE.version}"} in answer["relatedArtifact"]
    by_fact = {}
    for requirement in answer["dataRequirement"]:
        links = [e for e in requirement.get("extension", []) for x in e["extension"] if x["url"] == "linkId"]
        if links:
            link = next(x["valueString"] for x in links[0]["extension"] if x["url"] == "linkId")
            by_fact[link] = requirement
    assert list(by_fact) == list(TABLE.facts)
    for name, requirement in by_fact.items():
        (codes,) = [f["code"] for f in requirement["codeFilter"] if f["path"] == "code"]
        wanted = CODES["facts"][name]["codings"]
        assert {(c["system"], c["code"]) for c in codes} == {(c["system"], c["code"]) for c in wanted}
        (window,) = requirement["dateFilter"]
        lookback = TABLE.facts[name].lookback
        assert (window["valueDuration"]["value"], window["valueDuration"]["code"]) == (
            lookback.value,
            lookback.code,
        )
    types = [r["type"] for r in answer["dataRequirement"]]
    assert types.count("QuestionnaireResponse") == 1
    symptom = next(
        r for r in answer["dataRequirement"] if r["type"] == "Observation" and len(r["codeFilter"]) == 2
    )
    assert symptom["codeFilter"][0]["code"][0]["code"] == CODES["symptom"]["code"]


def test_the_cds_hooks_prefetch_asks_for_no_less_than_the_data_requirements(client: FlaskClient) -> None:
    answer = get(client, f"{LIBRARY}/$data-requirements")
    templates = prefetch_templates(load_codebook())
    asked = set(templates[OBSERVATIONS].split("&code=", 1)[1].split(","))
    for requirement in answer["dataRequirement"]:
        if requirement["type"] == "Observation":
            (codes,) = [f["code"] for f in requirement["codeFilter"] if f["path"] == "code"]
            assert {f"{c['system']}|{c['code']}" for c in codes} <= asked
        else:
            assert requirement["type"] == "QuestionnaireResponse"
            questionnaire = requirement["extension"][0]["extension"][0]["valueCanonical"]
            assert templates[RESPONSES].startswith("QuestionnaireResponse?")
            assert f"questionnaire={questionnaire}" in templates[RESPONSES]


def test_the_capability_statement_lists_the_library_and_its_operation(client: FlaskClient) -> None:
    statement = get(client, "/fhir/metadata")
    (library,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Library"]
    assert library["interaction"] == [{"code": "read"}]
    assert library["operation"] == [
        {
            "name": "data-requirements",
            "definition": "http://hl7.org/fhir/OperationDefinition/Library-data-requirements",
        }
    ]


def test_a_rule_table_the_packaged_cql_does_not_match_publishes_no_library(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    """A rule edited without `make cql`: the service runs the new rule, so logic that says the old one must
    not be served as its guideline (404 saying why); the PlanDefinition is still served."""
    raw = json.loads(DEFAULT_TABLE.read_text(encoding="utf-8"))
    raw["rules"][2]["when"]["all"][1]["greaterThan"] = 21  # persistent-numbness after three weeks
    edited = tmp_path / "table.json"
    edited.write_text(json.dumps(raw), encoding="utf-8")
    client = make_app(rules_file=edited).test_client()
    for path in (LIBRARY, f"{LIBRARY}/$data-requirements"):
        response = client.get(path)
        assert response.status_code == 404
        assert "changed without `make cql`" in response.get_json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/PlanDefinition/neckcheck-escalation").status_code == 200


@pytest.mark.parametrize("path", ["/fhir/Library/other", "/fhir/Library/other/$data-requirements"])
def test_other_library_ids_are_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "neckcheck-escalation-logic" in response.get_json()["issue"][0]["diagnostics"]
