"""The FHIR server of the clinician app's tests does what the app needs, checked with real requests.

Started once per run (``fhir_server`` in tests/conftest.py). Each test uses patients of its own, so the
order of the tests does not matter: the scenario fixtures' ids are fixed, and each scenario is used here
by one test only.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import requests

from service.assess import assess
from tests.browser.sdc import browser, page_server
from tests.fhir_server import FHIR_JSON, FhirServer, patient_transaction
from tests.live import free_port
from tests.scenarios import SCENARIOS


def scenario(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCENARIOS / name).read_text(encoding="utf-8"))
    return loaded


def statuses(response: dict[str, Any]) -> list[str]:
    return [entry["response"]["status"] for entry in response["entry"]]


def ids(searchset: dict[str, Any]) -> list[str]:
    return [
        entry["resource"]["id"] for entry in searchset.get("entry", []) if entry["search"]["mode"] == "match"
    ]


def observation(patient: str, oid: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "63102001"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueBoolean": True,
    }


def collection(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


# 1. a server of its own on loopback, its data in the run's temporary folder


def test_it_is_a_fhir_r4_server_on_loopback_with_its_database_in_a_temporary_folder(
    fhir_server: FhirServer,
) -> None:
    assert fhir_server.url.startswith("http://127.0.0.1:")
    capability = fhir_server.get("metadata")
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    assert (fhir_server.data / "sekmet.db").stat().st_size > 0  # SQLite in the temp folder, no other database


# 2. a transaction loads a sample patient, and every resource reads back


def test_a_transaction_loads_a_scenario_patient_and_each_resource_reads_back_as_sent(
    fhir_server: FhirServer,
) -> None:
    sample = patient_transaction("scn-2", scenario("S2-observations.json"), scenario("S2-questionnaire.json"))
    first = fhir_server.load(sample)
    assert first["type"] == "transaction-response"
    assert statuses(first) == ["201 Created"] * len(sample["entry"])
    for entry in sample["entry"]:
        sent = entry["resource"]
        back = fhir_server.get(f"{sent['resourceType']}/{sent['id']}")
        assert {k: v for k, v in back.items() if k != "meta"} == sent
        assert back["meta"]["versionId"] == "1"

    again = fhir_server.load(sample)  # PUT at a client-assigned id: update as create, then a plain update
    assert statuses(again) == ["200 OK"] * len(sample["entry"])
    assert fhir_server.count("Observation", "scn-2") == len(scenario("S2-observations.json")["entry"])
    assert fhir_server.count("QuestionnaireResponse", "scn-2") == 1


def test_a_transaction_that_fails_on_one_entry_stores_nothing(fhir_server: FhirServer) -> None:
    good = observation("rollback", "rollback-good", "2026-03-01T09:00:00Z")
    bad = {**observation("rollback", "rollback-bad", "2026-03-01T09:00:00Z"), "valueBoolean": "perhaps"}
    refused = fhir_server.post(patient_transaction("rollback", collection(good, bad)))
    assert refused.status_code == 400, refused.text
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert requests.get(f"{fhir_server.url}/Patient/rollback", timeout=10).status_code == 404
    assert fhir_server.count("Observation", "rollback") == 0


# 3. the searches of the app (the CDS prefetch's)


def test_the_app_finds_the_patient_s_observations_and_questionnaire_responses(
    fhir_server: FhirServer,
) -> None:
    observations, answers = scenario("S3-observations.json"), scenario("S3-questionnaire.json")
    fhir_server.load(patient_transaction("scn-3", observations, answers))
    fhir_server.load(
        patient_transaction("scn-3-other", collection(observation("scn-3-other", "o-x", "2026-03-01")))
    )

    assert fhir_server.get("Patient/scn-3")["id"] == "scn-3"
    expected = sorted(e["resource"]["id"] for e in observations["entry"])
    assert sorted(ids(fhir_server.get("Observation", patient="scn-3"))) == expected
    assert sorted(ids(fhir_server.get("Observation", subject="Patient/scn-3"))) == expected
    assert sorted(ids(fhir_server.get("Observation", patient="Patient/scn-3"))) == expected
    (answer,) = [e["resource"]["id"] for e in answers["entry"]]
    assert ids(fhir_server.get("QuestionnaireResponse", patient="scn-3")) == [answer]
    assert ids(fhir_server.get("QuestionnaireResponse", subject="Patient/scn-3")) == [answer]
    assert ids(fhir_server.get("QuestionnaireResponse", patient="scn-3-other")) == []


def test_count_and_sort_give_the_newest_first_page_by_page(fhir_server: FhirServer) -> None:
    dates = {
        "o-jan": "2026-01-05T09:00:00Z",
        "o-mar": "2026-03-05T09:00:00Z",
        "o-feb": "2026-02-05T09:00:00Z",
    }
    fhir_server.load(
        patient_transaction("sorted", collection(*(observation("sorted", i, d) for i, d in dates.items())))
    )

    page = fhir_server.get("Observation", patient="sorted", _sort="-date", _count=2)
    assert page["total"] == 3
    assert ids(page) == ["o-mar", "o-feb"]
    (following,) = [link["url"] for link in page["link"] if link["relation"] == "next"]
    rest = requests.get(following, headers=FHIR_JSON, timeout=10).json()
    assert ids(rest) == ["o-jan"]
    assert ids(fhir_server.get("Observation", patient="sorted", _sort="date", _count=1)) == ["o-jan"]


def test_questionnaire_responses_sort_by_authored(fhir_server: FhirServer) -> None:
    older = scenario("S4-questionnaire.json")["entry"][0]["resource"]
    newer = {**copy.deepcopy(older), "id": "s4-newer", "authored": "2026-03-11T09:00:00Z"}
    fhir_server.load(patient_transaction("scn-4", collection(older, newer)))
    assert ids(fhir_server.get("QuestionnaireResponse", patient="scn-4", _sort="-authored")) == [
        "s4-newer",
        older["id"],
    ]


def test_an_unknown_search_parameter_is_refused_when_the_client_asks_for_strict_handling(
    fhir_server: FhirServer,
) -> None:
    """Leniently (the default, FHIR R4 §3.1.1.5.8 ``Prefer: handling``) it is ignored with a warning."""
    strict = {**FHIR_JSON, "Prefer": "handling=strict"}
    answer = requests.get(f"{fhir_server.url}/Observation?no-such-param=1", headers=strict, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["issue"][0]["code"] == "not-supported"


# 4. the app's save: a transaction of conditional creates (FHIR R4 §3.1.0.8.1), twice


def test_the_same_conditional_create_transaction_twice_creates_nothing_new(fhir_server: FhirServer) -> None:
    observations, answers = scenario("S1-observations.json"), scenario("S1-questionnaire.json")
    fhir_server.load(patient_transaction("scn-1", observations, answers))
    facts = {**observations, "entry": observations["entry"] + answers["entry"]}
    save = assess(facts, output="transaction")  # what $assess?_output=transaction answers
    assert all("ifNoneExist" in entry["request"] for entry in save["entry"])
    made = {t: sum(e["resource"]["resourceType"] == t for e in save["entry"]) for t in SAVED}
    assert made["RiskAssessment"] == 1 and made["ServiceRequest"] >= 1 and made["GuidanceResponse"] == 1

    first = fhir_server.load(save)
    assert statuses(first) == ["201 Created"] * len(save["entry"])
    assert {t: fhir_server.count(t, "scn-1") for t in SAVED} == made

    second = fhir_server.load(save)
    assert statuses(second) == ["200 OK"] * len(save["entry"])  # each matched the one created the first time
    assert locations(second) == locations(first)
    assert {t: fhir_server.count(t, "scn-1") for t in SAVED} == made


SAVED = ("RiskAssessment", "ServiceRequest", "GuidanceResponse")


def locations(response: dict[str, Any]) -> list[str]:
    return [entry["response"]["location"] for entry in response["entry"]]


def test_a_conditional_create_that_matches_two_resources_is_refused_whole(fhir_server: FhirServer) -> None:
    """R4 §3.1.0.8.1: multiple matches => 412 Precondition Failed; in a transaction nothing is stored."""
    twin = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "twin"},
        "subject": {"reference": "Patient/twins"},
        "identifier": [{"system": "urn:example:twin", "value": "1"}],
    }
    post = {"method": "POST", "url": "Observation"}
    fhir_server.load(
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": twin, "request": post}] * 2}
    )
    conditional = {**post, "ifNoneExist": "identifier=urn:example:twin|1"}
    other = {**twin, "identifier": [{"system": "urn:example:twin", "value": "2"}]}
    entries = [
        {"resource": other, "request": {**post, "ifNoneExist": "identifier=urn:example:twin|2"}},
        {"resource": twin, "request": conditional},
    ]
    refused = fhir_server.post({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert refused.status_code == 412, refused.text
    assert refused.json()["issue"][0]["code"] == "multiple-matches"
    assert fhir_server.count("Observation", "twins") == 2


# 5. CORS: the app is served from another origin than the FHIR server's


def test_a_preflight_from_another_origin_allows_post_with_fhir_json_and_authorization(
    fhir_server: FhirServer,
) -> None:
    """The Fetch standard's CORS preflight, as a browser sends it before such a request."""
    origin = f"http://127.0.0.1:{free_port()}"
    for path in ("", "/Observation"):
        preflight = requests.options(
            f"{fhir_server.url}{path}",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            timeout=10,
        )
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] in ("*", origin)
        assert {"GET", "POST", "PUT"} <= set(preflight.headers["Access-Control-Allow-Methods"].split(", "))
        allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type"} <= allowed


def test_a_page_from_another_origin_reads_and_writes_with_a_bearer_token(fhir_server: FhirServer) -> None:
    """Headless Chromium, on a page of another loopback origin (the SDC tests' page server), fetches as the
    app will: without credentials, with ``Authorization`` and ``Content-Type: application/fhir+json``, so
    every request is preflighted."""
    fhir_server.load(
        patient_transaction("cors", collection(observation("cors", "o-cors", "2026-03-01T09:00:00Z")))
    )
    created = observation("cors", "o-cors-new", "2026-03-02T09:00:00Z")
    with page_server() as origin, browser() as chromium:
        assert origin.split(":")[2] != fhir_server.url.split(":")[2].split("/")[0]  # another origin indeed
        page = chromium.new_page()
        page.goto(f"{origin}/index.html")
        script = """async ([base, created]) => {
            const headers = {Authorization: 'Bearer test-token', Accept: 'application/fhir+json'};
            const read = await fetch(base + '/Observation?patient=cors', {headers});
            const write = await fetch(base + '/Observation/' + created.id, {
                method: 'PUT', body: JSON.stringify(created),
                headers: {...headers, 'Content-Type': 'application/fhir+json'}});
            return {read: read.status, found: (await read.json()).total, write: write.status,
                    location: write.headers.get('Location')};
        }"""
        result = page.evaluate(script, [fhir_server.url, created])
    assert result["read"] == 200 and result["found"] == 1
    assert result["write"] == 201
    assert result["location"].startswith(f"{fhir_server.url}/Observation/o-cors-new")  # an exposed header
    assert fhir_server.count("Observation", "cors") == 2
