"""A patient's chart on a FHIR server the test controls (pytest-httpserver), as the app's searches see it."""

from __future__ import annotations

from pytest_httpserver import HTTPServer

from tests.cds.support import scenario_resources, searchset


def serve_patient(httpserver: HTTPServer, name: str, token: str | None = None) -> str:
    """Serve scenario ``name``'s Observations (and no QuestionnaireResponse) for its patient, whose id is
    returned; with ``token``, only to requests that carry it."""
    patient, data = scenario_resources(name)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    httpserver.expect_request(f"/fhir/Patient/{patient}", headers=headers).respond_with_json(
        {"resourceType": "Patient", "id": patient, "name": [{"text": "Sam Sample"}]}
    )
    observations = [r for r in data if r["resourceType"] == "Observation"]
    httpserver.expect_request("/fhir/Observation", headers=headers).respond_with_json(searchset(observations))
    httpserver.expect_request("/fhir/QuestionnaireResponse", headers=headers).respond_with_json(searchset([]))
    return patient
