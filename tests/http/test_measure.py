"""Measure/neckcheck-escalation-gap: generated from the rule table and codes, linked to the CQL Library
and the PlanDefinition it counts by, its numerator's codes the ones screening recognises."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from flask.testing import FlaskClient

from service.assess import Assessor
from service.output.measure import escalation_rules, measure, recognised_codes
from service.reader.orders import drafted_orders
from tests.support import CODES, all_codings, validate_fhir

PATH = "/fhir/Measure/neckcheck-escalation-gap"


def get(client: FlaskClient, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_proportion_measure_with_the_three_populations_stratified_by_rule(
    client: FlaskClient, assessor: Assessor
) -> None:
    m = get(client, PATH)
    assert m["url"] == "https://neckcheck.org/fhir/Measure/neckcheck-escalation-gap"
    assert m["version"] == assessor.table.version
    assert m["scoring"]["coding"][0]["code"] == "proportion"
    assert m["improvementNotation"]["coding"][0]["code"] == "increase"
    (group,) = m["group"]
    codes = [p["code"]["coding"][0]["code"] for p in group["population"]]
    assert codes == ["initial-population", "denominator", "numerator"]
    assert [s["code"]["text"] for s in group["stratifier"]] == [r.id for r in assessor.table.rules]
    denominator = group["population"][1]["criteria"]
    assert denominator == {
        "language": "text/cql-expression",
        "expression": '"urgent-signs" is true or "imaging-referral" is true or "persistent-numbness" is true',
    }


def test_its_cql_names_definitions_of_the_library_it_links(client: FlaskClient) -> None:
    m = get(client, PATH)
    (library_url,) = m["library"]
    library = get(client, "/fhir/Library/neckcheck-escalation-logic")
    assert library_url == f"{library['url']}|{library['version']}"
    (cql,) = [c for c in library["content"] if c["contentType"] == "text/cql"]
    text = base64.b64decode(cql["data"]).decode("utf-8")
    (group,) = m["group"]
    expressions = [s["criteria"] for s in group["stratifier"]] + [p["criteria"] for p in group["population"]]
    cql_expressions = [e["expression"] for e in expressions if e["language"] == "text/cql-expression"]
    assert len(cql_expressions) == 5
    for expression in cql_expressions:
        for term in expression.split(" or "):
            definition = term.removesuffix(" is true")
            assert f"define {definition}:" in text, definition
    plan = get(client, "/fhir/PlanDefinition/neckcheck-escalation")
    assert m["relatedArtifact"][0]["resource"] == f"{plan['url']}|{plan['version']}"


def test_the_denominator_follows_the_rule_table(assessor: Assessor) -> None:
    """Generated, not written: a rule table where the radiculopathy rule is moderate counts it too."""
    table = assessor.table
    rules = tuple(
        dataclasses.replace(r, risk="moderate") if r.id == "radiculopathy-pattern" else r for r in table.rules
    )
    changed = dataclasses.replace(table, rules=rules)
    assert [r.id for r in escalation_rules(changed)] == [r.id for r in table.rules]
    (group,) = measure(changed, assessor.book)["group"]
    assert '"radiculopathy-pattern" is true' in group["population"][1]["criteria"]["expression"]
    assert "physiotherapy-referral:" in group["population"][2]["description"]
    validate_fhir(measure(changed, assessor.book))


def _request(coding: dict[str, str], neurologist: bool) -> dict[str, Any]:
    request: dict[str, Any] = {"resourceType": "ServiceRequest", "code": {"coding": [coding]}}
    if neurologist:
        performer = CODES["orders"]["neurology-referral"]["performerType"]
        request["performerType"] = {"coding": [{"system": performer["system"], "code": performer["code"]}]}
    return request


def test_the_numerators_codes_are_the_ones_screening_recognises(assessor: Assessor) -> None:
    """Both ways: each code the Measure lists makes a ServiceRequest count as that order, and every code
    in codes.json that does so for an escalation order is listed."""
    book = assessor.book
    keys = sorted({o.order for r in escalation_rules(assessor.table) for o in r.orders})
    listed = {key: recognised_codes(book, key) for key in keys}
    for key, codes in listed.items():
        for text in codes:
            pair, _, performer = text.partition(" with performerType ")
            system, code = pair.split("|")
            request = _request({"system": system, "code": code}, bool(performer))
            assert key in drafted_orders({"entry": [{"resource": request}]}, book).orders, text
    for coding in all_codings(CODES):
        pair = f"{coding['system']}|{coding['code']}"
        for neurologist in (False, True):
            found = drafted_orders({"entry": [{"resource": _request(coding, neurologist)}]}, book).orders
            for key in found & set(keys):
                assert any(c.startswith(pair) for c in listed[key]), (pair, key)


def test_the_capability_statement_lists_the_measure(client: FlaskClient) -> None:
    cs = get(client, "/fhir/metadata")
    types = [r["type"] for r in cs["rest"][0]["resource"]]
    assert "Measure" in types
