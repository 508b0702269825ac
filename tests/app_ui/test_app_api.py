"""The clinician app's service side: its pages, ``POST /app/api/assess`` and the vendored library.

The browser tests (tests/browser/test_app.py) drive the whole loop; these pin each rule of the service side
where a failure names its cause: which data is read from where, what the answers become, what is saved.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from service import npm
from service.app_ui import vendor
from service.app_ui.samples import samples
from service.assess import Assessor
from service.errors import ConfigError
from service.npm import Registry
from service.storage.audit import since
from tests.app_ui.charts import serve_patient
from tests.cds.support import scenario_resources, searchset
from tests.tokens import make_ehr

API = "/app/api/assess"
URGENT = ["vision-change", "slurred-speech", "weakness", "symptoms-worsening"]
ANSWERABLE = {
    *URGENT,
    "facial-numbness-side",
    "facial-numbness-days",
    "neck-pain-severity",
    "facial-numbness-onset",
}
ALL_NO = dict.fromkeys(URGENT, False)


@pytest.fixture()
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    """The app as `make run` serves it: insecure dev, with the demo."""
    return make_app(app_demo=True).test_client()


def turn(client: FlaskClient, body: dict[str, Any], **headers: str) -> Any:
    answer = client.post(API, json=body, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def refused(client: FlaskClient, body: Any, status: int) -> dict[str, Any]:
    answer = client.post(API, json=body)
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.mimetype == "application/fhir+json"
    outcome: dict[str, Any] = answer.get_json()
    return outcome["issue"][0]


def test_the_pages_are_served_under_a_strict_policy(client: FlaskClient) -> None:
    for path in ("/app/", "/app/launch", "/app/demo"):
        page = client.get(path)
        assert page.status_code == 200 and page.mimetype == "text/html", path
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "unsafe" not in policy, path
        inline = re.search(r"<script(?![^>]*\bsrc=)", page.get_data(as_text=True))
        assert inline is None, path  # scripts only from files of this service
        assert page.headers["Referrer-Policy"] == "no-referrer"
    for path in (
        "/app/app.js",
        "/app/app.css",
        "/app/vendor/fhir-client.js",
        "/app/vendor/fhir-client.LICENSE.txt",
    ):
        assert client.get(path).status_code == 200, path
    for path in ("/app/other.js", "/app/vendor/other.js", "/app/vendor/vendor.json"):
        missing = client.get(path)
        assert missing.status_code == 404 and missing.mimetype == "application/fhir+json", path


def test_the_demo_lists_every_sample_patient(client: FlaskClient) -> None:
    page = client.get("/app/demo").get_data(as_text=True)
    listed = samples()
    assert [s.id for s in listed][:1] == ["S5"]  # the preliminary one first: it shows the whole loop
    assert len(listed) == 14  # the 13 scenarios that give facts, and S0 with nothing on record
    for s in listed:
        assert f'href="/app/?sample={s.id}&amp;patient={s.patient}"' in page


def test_a_preliminary_sample_asks_exactly_the_missing_urgent_signs(client: FlaskClient) -> None:
    view = turn(client, {"sample": "S5", "patient": "scn-5"})
    assert (view["risk"], view["status"]) == ("low", "preliminary")
    assert [q["fact"] for q in view["ask"]] == URGENT
    assert {q["type"] for q in view["ask"]} == {"boolean"}
    assert view["why"].startswith("Preliminary: vision change, slurred speech, weakness and worsening")
    assert view["why"] not in view["summary"]  # said once
    assert {e["fact"]: e["date"] for e in view["evidence"]}["facial-numbness"] == "2026-03-10T09:00:00Z"
    assert view["asOf"] == "2026-03-10T09:00:00Z"  # a sample is assessed as of its own date
    assert [e["resource"]["resourceType"] for e in view["save"]["entry"]] == ["RiskAssessment"]


@pytest.mark.parametrize(
    ("answers", "risk", "status", "orders"),
    [
        (ALL_NO, "low", "final", []),
        ({**ALL_NO, "weakness": True}, "high", "final", ["stat"]),
        ({**ALL_NO, "weakness": None}, "low", "preliminary", []),  # null is unknown, never "no"
        ({"vision-change": False}, "low", "preliminary", []),
    ],
)
def test_answers_are_reassessed_with_the_data(
    client: FlaskClient, answers: dict[str, Any], risk: str, status: str, orders: list[str]
) -> None:
    view = turn(client, {"sample": "S5", "patient": "scn-5", "answers": answers})
    assert (view["risk"], view["status"]) == (risk, status)
    assert [o["priority"] for o in view["orders"]] == orders
    assert all(o["status"] == "draft" and o["intent"] == "proposal" for o in view["orders"])
    unanswered = [f for f in URGENT if answers.get(f) is None]
    assert [q["fact"] for q in view["ask"]] == unanswered


def test_the_save_transaction_holds_the_answers_the_assessment_and_its_orders(client: FlaskClient) -> None:
    view = turn(client, {"sample": "S5", "patient": "scn-5", "answers": {**ALL_NO, "weakness": True}})
    entries = view["save"]["entry"]
    assert view["save"]["type"] == "transaction"
    assert [e["resource"]["resourceType"] for e in entries] == [
        "QuestionnaireResponse",
        "RiskAssessment",
        "ServiceRequest",
    ]
    answers, risk, order = (e["resource"] for e in entries)
    # every entry is a conditional create on its identifier: saving twice creates nothing new
    for entry in entries:
        ident = entry["resource"]["identifier"]
        ident = ident[0] if isinstance(ident, list) else ident
        assert entry["request"]["method"] == "POST"
        assert entry["request"]["ifNoneExist"] == f"identifier={ident['system']}|{ident['value']}"
    assert answers["status"] == "completed" and answers["subject"] == {"reference": "Patient/scn-5"}
    assert "id" not in answers and entries[0]["fullUrl"].startswith("urn:uuid:")
    assert {"reference": entries[0]["fullUrl"], "type": "QuestionnaireResponse"} in risk["basis"]
    assert order["status"] == "draft"
    given = {i["linkId"]: i["answer"][0]["valueBoolean"] for g in answers["item"] for i in g["item"]}
    assert given == {**ALL_NO, "weakness": True}


def test_the_same_answers_give_the_same_resources(client: FlaskClient) -> None:
    body = {"sample": "S5", "patient": "scn-5", "answers": ALL_NO}
    assert turn(client, body)["save"] == turn(client, body)["save"]


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ({"sample": "S5"}, 400, "patient"),
        ({"patient": "scn-5"}, 400, "fhirServer"),
        ({"patient": "scn-5", "sample": "S5", "fhirServer": "http://127.0.0.1:9/fhir"}, 400, "fhirServer"),
        ({"patient": "scn-5", "sample": "S5", "extra": 1}, 400, "extra"),
        ({"patient": "scn 5", "sample": "S5"}, 400, "patient"),
        ({"patient": "scn-5", "sample": "S99"}, 404, "sample"),
        ({"patient": "scn-1", "sample": "S5"}, 422, "patient"),
        ({"patient": "scn-5", "sample": "S5", "answers": {"weakness": "yes"}}, 422, "answers.weakness"),
        ({"patient": "scn-5", "sample": "S5", "answers": {"weakness": 1}}, 422, "answers.weakness"),
        ({"patient": "scn-5", "sample": "S5", "answers": {"favourite-colour": True}}, 422, "answers"),
        ({"patient": "scn-5", "sample": "S5", "answers": {"facial-numbness-side": "up"}}, 422, "answers"),
        ({"patient": "scn-5", "sample": "S5", "answers": {"facial-numbness-days": -3}}, 422, "answers"),
        ({"patient": "scn-5", "sample": "S5", "answers": {"neck-pain-severity": 11}}, 422, "answers"),
        ({"patient": "scn-5", "sample": "S5", "answers": {"facial-numbness-onset": "soon"}}, 422, "answers"),
        ({"patient": "scn-5", "sample": "S5", "answers": {"facial-numbness-days": 2**31}}, 422, "answers"),
        (
            {"patient": "scn-5", "sample": "S5", "answers": {"facial-numbness-onset": "2026-03-11"}},
            422,
            "answers",
        ),
    ],
)
def test_a_bad_request_is_a_clear_outcome(
    client: FlaskClient, body: dict[str, Any], status: int, where: str
) -> None:
    issue = refused(client, body, status)
    fact = next(iter(body.get("answers", {})), None)
    # an answer's fault names the answer itself; an unknown question, the answers as a whole
    expected = f"answers.{fact}" if where == "answers" and fact in ANSWERABLE else where
    assert issue["expression"] == [expected], issue


def test_only_json_is_taken(client: FlaskClient) -> None:
    answer = client.post(API, data="patient=scn-5", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 415 and answer.mimetype == "application/fhir+json"


def test_the_service_reads_the_chart_with_the_prefetch_searches_and_the_token(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    patient = serve_patient(httpserver, "S7-observations.json", token="smart-token")
    server = httpserver.url_for("/fhir")
    view = turn(client, {"fhirServer": server, "patient": patient}, Authorization="Bearer smart-token")
    assert (view["risk"], view["status"]) == ("high", "final")
    paths = sorted(request.path for request, _ in httpserver.log)
    assert paths == ["/fhir/Observation", f"/fhir/Patient/{patient}", "/fhir/QuestionnaireResponse"]
    assert all(request.headers["Authorization"] == "Bearer smart-token" for request, _ in httpserver.log)
    searched = {request.path: request.args.get("patient") for request, _ in httpserver.log}
    assert searched["/fhir/Observation"] == patient


@pytest.mark.parametrize("status", [401, 403])
def test_a_server_that_refuses_the_token_is_the_bare_401_of_every_refusal(
    client: FlaskClient, httpserver: HTTPServer, status: int
) -> None:
    """Not a 412 that says why: a caller could tell a token the server refuses from one it takes."""
    for path in ("/fhir/Patient/p1", "/fhir/Observation", "/fhir/QuestionnaireResponse"):
        httpserver.expect_request(path).respond_with_data("no", status=status)
    body = {"fhirServer": httpserver.url_for("/fhir"), "patient": "p1"}
    answer = client.post(API, json=body, headers={"Authorization": "Bearer some-token"})
    assert (answer.status_code, answer.data, answer.headers["WWW-Authenticate"]) == (401, b"", "Bearer")


def test_in_production_only_a_trusted_issuers_fhir_server_is_read(
    make_app: Callable[..., Flask], tmp_path: Path, httpserver: HTTPServer
) -> None:
    listed = httpserver.url_for("/fhir")
    ehr = make_ehr(tmp_path, fhir_servers=(listed,), checks_tokens=(listed,))
    client = make_app(**ehr.settings(app_demo=True)).test_client()
    patient = serve_patient(httpserver, "S7-observations.json", token="smart-token")
    body = {"fhirServer": listed, "patient": patient}
    assert client.post(API, json=body).status_code == 401  # no open-server mode outside insecure dev
    assert httpserver.log == []
    assert turn(client, body, Authorization="Bearer smart-token")["risk"] == "high"
    reads = len(httpserver.log)
    other = listed.replace("/fhir", "/other-fhir")
    answer = client.post(
        API, json={**body, "fhirServer": other}, headers={"Authorization": "Bearer smart-token"}
    )
    assert answer.status_code == 412 and answer.get_json()["issue"][0]["expression"] == ["fhirServer"]
    assert len(httpserver.log) == reads  # nothing was sent to the unlisted server
    policy = client.get("/app/").headers["Content-Security-Policy"]
    assert f"connect-src 'self' http://127.0.0.1:{httpserver.port}" in policy
    assert "127.0.0.1:*" not in policy  # loopback is open only in insecure dev
    assert (
        turn(client, {"sample": "S5", "patient": "scn-5"})["status"] == "preliminary"
    )  # the demo needs none


def test_a_turn_that_finds_nothing_on_record_is_audited(
    make_app: Callable[..., Flask], httpserver: HTTPServer
) -> None:
    """It read the patient's chart all the same; in insecure dev the caller is "dev", as for $assess."""
    for path in ("/fhir/Observation", "/fhir/QuestionnaireResponse"):
        httpserver.expect_request(path).respond_with_json(searchset([]))
    app = make_app()
    view = turn(app.test_client(), {"fhirServer": httpserver.url_for("/fhir"), "patient": "p3"})
    assert view["status"] == "no data"
    assert app.extensions["neckcheck.writer"].flush()
    (record,) = since(app.extensions["neckcheck.database"], dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert (record["channel"], record["caller"], record["status"], record["risk"]) == (
        "app",
        "dev",
        "no-facts",
        "none",
    )


def test_the_ehr_origins_setting_widens_connect_and_frame_sources(make_app: Callable[..., Flask]) -> None:
    client = make_app(app_ehr_origins="https://auth.example-hospital.org https://ehr.example-hospital.org")
    policy = client.test_client().get("/app/").headers["Content-Security-Policy"]
    assert "https://auth.example-hospital.org https://ehr.example-hospital.org;" in policy
    assert "frame-ancestors 'self' https://auth.example-hospital.org" in policy


def test_the_vendored_library_is_refused_unless_its_integrity_matches(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        for name, text in (("package/dist/lib.js", b"// lib"), ("package/other.js", b"// not shipped")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text))
    data = packed.getvalue()
    httpserver.expect_request("/some-lib/-/some-lib-1.0.0.tgz").respond_with_data(data)
    registry = Registry(httpserver.url_for("").rstrip("/"))
    pinned = npm.integrity_of(data)
    with pytest.raises(RuntimeError, match="is not the pinned"):
        npm.tarball("some-lib", "1.0.0", "sha512-" + "A" * 88, registry)
    fetched = npm.tarball("some-lib", "1.0.0", pinned, registry)
    vendor.unpack(fetched, {"package/dist/lib.js": "lib.js"}, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib.js"]
    assert (tmp_path / "lib.js").read_bytes() == b"// lib"


def test_every_pinned_file_is_in_the_repository_as_pinned() -> None:
    assert vendor.check() == []  # the wheel ships these (tests/packaging)


def test_the_scopes_asked_for_are_a_setting(make_app: Callable[..., Flask]) -> None:
    v1 = "launch openid fhirUser patient/Observation.read patient/RiskAssessment.write"
    client = make_app(app_scopes=v1).test_client()
    assert f'data-scope="{v1}"' in client.get("/app/launch").get_data(as_text=True)
    registered = client.get("/cds-services").get_json()["services"][0]["extension"]["neckcheck-smart-app"]
    assert registered["scope"] == v1


def test_scopes_without_launch_stop_the_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match="NECKCHECK_APP_SCOPES must include 'launch'"):
        make_app(app_scopes="openid patient/Observation.rs")


@pytest.mark.parametrize(
    "origin", ["*", "https:", "https://ehr.example.org/path", "https://a.org; script-src *"]
)
def test_an_ehr_origin_that_is_not_an_origin_stops_the_start(
    make_app: Callable[..., Flask], origin: str
) -> None:
    with pytest.raises(ConfigError, match="NECKCHECK_APP_EHR_ORIGINS"):
        make_app(app_ehr_origins=origin)


def test_with_nothing_recorded_the_app_asks_the_opening_questions_round_by_round(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/fhir/Patient/p2").respond_with_json({"resourceType": "Patient", "id": "p2"})
    for path in ("/fhir/Observation", "/fhir/QuestionnaireResponse"):
        httpserver.expect_request(path).respond_with_json(searchset([]))
    body: dict[str, Any] = {"fhirServer": httpserver.url_for("/fhir"), "patient": "p2"}
    view = turn(client, body)
    # no risk without data (unknown is not "no"), and nothing to save; the ungated questions the rules use
    assert (view["risk"], view["status"], view["save"]["entry"]) == ("unknown", "no data", [])
    assert [q["fact"] for q in view["ask"]] == [*URGENT, "facial-numbness", "neck-pain"]
    view = turn(client, {**body, "answers": {**ALL_NO, "facial-numbness": True, "neck-pain": False}})
    assert (view["risk"], view["status"]) == ("low", "preliminary")  # what the numbness opens is asked next
    assert {q["fact"] for q in view["ask"]} == {
        "facial-numbness-side",
        "facial-numbness-days",
        "headache",
        "dizziness",
    }
    side = next(q for q in view["ask"] if q["fact"] == "facial-numbness-side")
    assert side["type"] == "choice" and side["options"]
    answers = {**ALL_NO, "facial-numbness": True, "neck-pain": False, "headache": False, "dizziness": False}
    answers |= {"facial-numbness-side": side["options"][0]["code"], "facial-numbness-days": 3}
    view = turn(client, {**body, "answers": answers})
    assert view["status"] == "final" and view["ask"] == []
    assert view["save"]["entry"][0]["resource"]["resourceType"] == "QuestionnaireResponse"


def test_a_final_result_leads_with_the_action_the_card_summary_is_built_from(
    client: FlaskClient, assessor: Assessor
) -> None:
    """The action is the fired rule's outcome (the words the CDS card's summary leads with), not the rule's
    id and article text; those stay in ``summary`` and ``rules``, below it."""
    view = turn(client, {"sample": "S5", "patient": "scn-5", "answers": {**ALL_NO, "weakness": True}})
    assert (
        view["action"]
        == assessor.table.rule("urgent-signs").outcome
        == "Needs urgent in-person evaluation now"
    )
    assert view["summary"].startswith("Urgent signs (urgent-signs)")
    quiet = turn(client, {"sample": "S8", "patient": "scn-8"})
    assert quiet["rules"] == [] and quiet["action"] == (
        f"{assessor.table.no_rule_outcome}. {assessor.table.no_rule_guideline}"
    )


def test_a_sample_shows_who_the_patient_is(client: FlaskClient) -> None:
    view = turn(client, {"sample": "S5", "patient": "scn-5"})
    # the age is the sample's own date's (2026-03-10), not today's
    assert view["demographics"] == {
        "name": "Maren Holt",
        "sex": "female",
        "birthDate": "1979-06-14",
        "age": 46,
    }


@pytest.mark.parametrize(
    ("patient", "shown"),
    [
        (
            {"name": [{"use": "old", "text": "Old Name"}, {"given": ["Ada", "B."], "family": "Lovelace"}]},
            {"name": "Ada B. Lovelace", "sex": "female", "birthDate": "1980-03-11", "age": 45},
        ),
        (
            {"name": [{"text": "Ada Lovelace"}], "birthDate": "1980"},
            {"name": "Ada Lovelace", "birthDate": "1980"},
        ),
        ({}, {}),  # a Patient that gives nothing: each part not on record
        (None, {}),  # no Patient at all (404)
    ],
)
def test_the_patient_read_from_the_fhir_server_is_shown_as_far_as_it_goes(
    client: FlaskClient, httpserver: HTTPServer, patient: dict[str, Any] | None, shown: dict[str, Any]
) -> None:
    who, data = scenario_resources("S8-observations.json")
    if patient is not None:
        resource = {"resourceType": "Patient", "id": who, **patient}
        if "birthDate" not in patient and patient:
            resource |= {"gender": "female", "birthDate": "1980-03-11"}
        httpserver.expect_request(f"/fhir/Patient/{who}").respond_with_json(resource)
    else:
        httpserver.expect_request(f"/fhir/Patient/{who}").respond_with_data("not found", status=404)
    httpserver.expect_request("/fhir/Observation").respond_with_json(searchset(data))
    httpserver.expect_request("/fhir/QuestionnaireResponse").respond_with_json(searchset([]))
    view = turn(client, {"fhirServer": httpserver.url_for("/fhir"), "patient": who})
    assert view["status"] == "final"  # the Patient is context only: it never stops the assessment
    assert view["demographics"] == {"name": None, "sex": None, "birthDate": None, "age": None, **shown}


def test_records_not_used_are_listed_even_when_nothing_else_is_on_record(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    """A chart whose only record was entered in error gives no fact; the screen still says what it held."""
    who, data = scenario_resources("S13-observations.json")
    (in_error,) = [r for r in data if r["status"] == "entered-in-error"]
    httpserver.expect_request("/fhir/Observation").respond_with_json(searchset([in_error]))
    httpserver.expect_request("/fhir/QuestionnaireResponse").respond_with_json(searchset([]))
    view = turn(client, {"fhirServer": httpserver.url_for("/fhir"), "patient": who})
    assert view["status"] == "no data"
    assert view["notUsed"] == [
        {"where": "Bundle.entry[0].resource", "why": "weakness: not used (entered in error)"}
    ]


def test_the_clinicians_answers_are_marked_apart_from_the_chart(client: FlaskClient) -> None:
    view = turn(client, {"sample": "S5", "patient": "scn-5", "answers": {"weakness": False}})
    here = {e["fact"] for e in view["evidence"] if e["answeredHere"]}
    assert here == {"weakness"}
    assert {e["fact"] for e in view["evidence"] if not e["answeredHere"]} >= {"facial-numbness", "headache"}


def test_every_urgent_sign_stays_answerable_once_one_decides_the_result(client: FlaskClient) -> None:
    """Weakness present is the result on its own, so the other signs cannot change it; they are still
    offered (``needed`` false), so what the patient says about them can be recorded."""
    body = {"sample": "S5", "patient": "scn-5", "answers": {"weakness": True}}
    view = turn(client, body)
    assert (view["risk"], view["status"]) == ("high", "final")
    assert [(q["fact"], q["needed"]) for q in view["ask"]] == [
        ("vision-change", False),
        ("slurred-speech", False),
        ("symptoms-worsening", False),
    ]
    view = turn(client, {**body, "answers": {"weakness": True, "vision-change": True}})
    assert {"vision-change": "yes", "weakness": "yes"}.items() <= {
        e["fact"]: e["value"] for e in view["evidence"]
    }.items()
    assert [q["fact"] for q in view["ask"]] == ["slurred-speech", "symptoms-worsening"]


def test_the_demo_has_a_patient_with_nothing_on_record(client: FlaskClient) -> None:
    assert 'href="/app/?sample=S0&amp;patient=demo-new"' in client.get("/app/demo").get_data(as_text=True)
    view = turn(client, {"sample": "S0", "patient": "demo-new"})
    assert (view["status"], view["evidence"], view["notUsed"]) == ("no data", [], [])
    assert view["demographics"]["name"] == "Jonas Lind"
    assert [q["fact"] for q in view["ask"]] == [*URGENT, "facial-numbness", "neck-pain"]
