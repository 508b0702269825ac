"""The FHIR surface: ``POST /fhir/$assess``, SDC ``$populate`` and the published, read-only artefacts."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from werkzeug.routing import BaseConverter

from service.assess import Assessor, parse_json
from service.cql.generate import LIBRARY_ID
from service.cql.library import data_requirements, logic_library
from service.errors import InvalidInput, NotFound, Unsupported
from service.output.artefacts import (
    capability_statement,
    operation_definition,
    plan_definition,
    questionnaire,
)
from service.output.artefacts import populate_operation_definition as populate_definition
from service.output.measure import measure
from service.rules.table import RuleTable
from service.sdc.populate import populate
from service.web.auth import public_base, record, require_token, settings, shadow
from service.web.responses import fhir_response

bp = Blueprint("fhir", __name__, url_prefix="/fhir")

ACCEPTED_TYPES = ("application/fhir+json", "application/json")


class FhirIdConverter(BaseConverter):
    """A path segment that is a FHIR id (R4 §2.24.0.1 ``id``): keeps ``$operation`` segments out of read
    routes, so ``Allow`` on an operation's URL names only the operation's method."""

    regex = r"[A-Za-z0-9\-.]{1,64}"


def _assessor() -> Assessor:
    assessor: Assessor = current_app.extensions["neckcheck.assessor"]
    return assessor


def _body() -> object:
    """The JSON body of a FHIR operation call, after the token and Content-Type checks."""
    audience = settings().fhir_audience or f"{public_base()}/fhir"
    require_token(audience, frozenset(settings().required_scopes.split()))
    mimetype = (request.mimetype or "").lower()
    if mimetype not in ACCEPTED_TYPES:
        shown = request.content_type or "none"
        raise Unsupported(f"Content-Type {shown[:60]!r} is not supported; send application/fhir+json")
    return parse_json(request.get_data(cache=False))


@bp.post("/$assess")
def assess() -> Response:
    body = _body()
    mode = request.args.get("_validate", "intake")
    if mode not in ("intake", "strict"):
        raise InvalidInput("_validate must be 'intake' (default) or 'strict'", "_validate")
    output = request.args.get("_output")
    result = _assessor().run(body, output=output, strict=mode == "strict")
    record(result, body, "http")
    answer = fhir_response(result.bundle)
    shadow(result, body, "http")  # once the answer is made: the candidate never holds it up
    return answer


@bp.post("/Questionnaire/$populate")
def populate_by_canonical() -> Response:
    """SDC type level: the ``questionnaire`` part names the form (this server has one)."""
    return _populated(_body())


@bp.post("/Questionnaire/<rid>/$populate")
def populate_instance(rid: str) -> Response:
    a = _assessor()
    published = questionnaire(a.table, a.book)["id"]
    if rid != published:
        raise NotFound(f"Questionnaire/{rid[:64]} not found; this server publishes {published}")
    return _populated(_body())


def _populated(body: object) -> Response:
    """$populate reads the patient's data as $assess does, so it is audited as one (channel ``sdc``),
    its output the QuestionnaireResponse it answers with."""
    result = populate(body, _assessor())
    record(result.assessment, body, "sdc", [result.response["identifier"]["value"]])
    return fhir_response(result.parameters)


@bp.get("/metadata")
def metadata() -> Response:
    a = _assessor()
    return fhir_response(capability_statement(a.table, a.book, current_app.config["NECKCHECK_VERSION"]))


@bp.get("/OperationDefinition/<rid>")
def get_operation_definition(rid: str) -> Response:
    a = _assessor()
    published = {
        d["id"]: d for d in (operation_definition(a.table, a.book), populate_definition(a.table, a.book))
    }
    if rid not in published:
        raise NotFound(
            f"OperationDefinition/{rid[:64]} not found; this server publishes {', '.join(published)}"
        )
    return fhir_response(published[rid])


@bp.get("/Questionnaire/<fhir_id:rid>")  # a FHIR id, so GET never claims /Questionnaire/$populate
def get_questionnaire(rid: str) -> Response:
    return _published(rid, questionnaire(_version(), _assessor().book))


@bp.get("/PlanDefinition/<rid>")
def get_plan_definition(rid: str) -> Response:
    return _published(rid, plan_definition(_version(), _assessor().book))


@bp.get("/Measure/<fhir_id:rid>")
def get_measure(rid: str) -> Response:
    """The escalation-gap measure that screening reports on (fhir/MeasureReport.ndjson)."""
    a = _assessor()
    return _published(rid, measure(a.table, a.book))


@bp.get("/Library/<fhir_id:rid>")
def get_library(rid: str) -> Response:
    """The computable guideline: the CQL and ELM of the rules (service/cql)."""
    _library_id(rid)
    return fhir_response(logic_library(_version(), _assessor().book))


@bp.get("/Library/<fhir_id:rid>/$data-requirements")
def get_data_requirements(rid: str) -> Response:
    _library_id(rid)
    return fhir_response(data_requirements(_version(), _assessor().book))


def _version() -> RuleTable:
    """The rule table whose artefact is asked for: ``?version=`` names one of the published versions
    (retired ones stay readable, so a result can be traced to the rules that made it); without it, the
    one the service runs."""
    version = request.args.get("version")
    if version is None:
        return _assessor().table
    tables: dict[str, RuleTable] = current_app.extensions["neckcheck.rule_tables"]
    if version not in tables:
        raise NotFound(
            f"rule set version {version[:40]!r} not found; this server publishes {', '.join(tables)}"
        )
    return tables[version]


def _library_id(rid: str) -> None:
    if rid != LIBRARY_ID:
        raise NotFound(f"Library/{rid[:64]} not found; this server publishes {LIBRARY_ID}")


def _published(rid: str, resource: dict[str, object]) -> Response:
    if rid != resource["id"]:
        raise NotFound(
            f"{resource['resourceType']}/{rid[:64]} not found; this server publishes {resource['id']}"
        )
    return fhir_response(resource)
