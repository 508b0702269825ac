"""One turn of the clinician app: read the patient's data, add the clinician's answers, assess, and say
what to show. Free of Flask, like ``service.cds.hook``, so tests and the CLI can drive it without HTTP.
Reading (``read_chart``) and assessing (``assess_chart``) are two steps, so the caller can write the audit
record of a read even when what was read cannot be assessed.

The data is read by the service, not trusted from the browser: from a FHIR server with the searches of
the CDS prefetch (``service.reader.record.gather``, the same deadline and the same list of servers a caller
may make us contact), under the clinician's SMART access token, or from a packaged demo sample.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from service.app_ui.answers import answers_response
from service.app_ui.person import demographics
from service.app_ui.samples import sample
from service.app_ui.screen import not_used, nothing_recorded, screen
from service.assess import Assessment, Assessor
from service.errors import NoFacts, Unauthorized, Unprocessable
from service.output.artefacts import questionnaire
from service.reader.client import FhirClient
from service.reader.record import NeededDataRefused, gather
from service.reader.searches import PATIENT
from service.security.fhir_servers import FhirServerPolicy

JSON = dict[str, Any]


@dataclass(frozen=True)
class Reader:
    """Where a turn may read FHIR data from, and how."""

    client: FhirClient
    policy: FhirServerPolicy
    templates: dict[str, str]

    def searches(self, patient: bool) -> dict[str, str]:
        """The prefetch searches; with ``patient``, also the Patient read (only shown, never assessed)."""
        return {key: path for key, path in self.templates.items() if patient or key != PATIENT}

    def searched_types(self) -> frozenset[str]:
        """The resource types the searches read: what the caller's token must allow."""
        return frozenset(path.split("?", 1)[0] for path in self.searches(patient=False).values())

    @staticmethod
    def context_types() -> frozenset[str]:
        """What is read when the token allows it, else shown as not on record: the Patient (by id)."""
        return frozenset({"Patient"})


@dataclass(frozen=True)
class Chart:
    """What one turn assesses: the patient's data as read, plus the clinician's answers, as of when."""

    patient: str
    bundle: JSON  # a collection Bundle: the resources read, then the answers (what the audit record hashes)
    person: JSON | None  # the Patient resource, when one was read: shown, never assessed
    answered: tuple[str, JSON] | None  # the answers' fullUrl and QuestionnaireResponse
    form: JSON  # the published Questionnaire the answers belong to
    as_of: dt.datetime | None  # a sample's own date; None: now
    demo: bool


@dataclass(frozen=True)
class Turn:
    view: JSON  # what the page shows (service.app_ui.screen)
    assessment: Assessment | None  # None: nothing recorded that the rules read
    chart: Chart


def read_chart(
    request: JSON,
    token: str | None,
    assessor: Assessor,
    reader: Reader,
    now: dt.datetime,
    readable: frozenset[str] = frozenset(),
) -> Chart:
    """``request``: an ``AppAssessSchema`` payload; ``token``: the SMART access token for its FHIR server,
    already accepted for this patient by the caller (service/web/auth.py), which also says which context
    types (``Reader.context_types``) it may read: ``readable``.

    The answers are checked before the FHIR server is asked, so a turn refused for its answers has read
    nothing. A refusal of the token by the FHIR server is ``Unauthorized``, like every other refusal.
    """
    patient = request["patient"]
    chosen = sample(request["sample"]) if "sample" in request else None
    if chosen is not None and chosen.patient != patient:
        raise Unprocessable(f"sample {chosen.id} is about another patient", "patient")
    as_of = chosen.as_of if chosen is not None else None
    form = questionnaire(assessor.table, assessor.book)
    answered = None
    if any(v is not None for v in (request.get("answers") or {}).values()):
        answered = answers_response(
            request["answers"], patient, as_of or now, form, assessor.table, assessor.book
        )
    if chosen is not None:
        resources, person = list(chosen.resources), chosen.person
    else:
        resources, person = _from_fhir_server(request, token, reader, "Patient" in readable)
    entries: list[JSON] = [{"resource": r} for r in resources]
    if answered is not None:
        entries.append({"fullUrl": answered[0], "resource": answered[1]})
    bundle: JSON = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    return Chart(patient, bundle, person, answered, form, as_of, chosen is not None)


def _from_fhir_server(
    request: JSON, token: str | None, reader: Reader, read_patient: bool
) -> tuple[list[JSON], JSON | None]:
    """The resources to assess, and the Patient (None when not read, not found or refused: the Patient is
    not needed data, so ``gather`` lets its read fail)."""
    hook_like: JSON = {"context": {"patientId": request["patient"]}, "fhirServer": request["fhirServer"]}
    if token:
        hook_like["fhirAuthorization"] = {"access_token": token}
    try:
        gathered = gather(hook_like, reader.searches(read_patient), reader.client, reader.policy)
    except NeededDataRefused as refused:
        raise Unauthorized(f"the FHIR server refused the token: {refused}") from refused
    people = [
        r
        for r in gathered.resources
        if r.get("resourceType") == "Patient" and r.get("id") == request["patient"]
    ]
    resources = [r for r in gathered.resources if r.get("resourceType") != "Patient"]
    return resources, people[0] if people else None


def assess_chart(chart: Chart, assessor: Assessor, now: dt.datetime) -> Turn:
    """Assess what was read and say what to show; with nothing the rules read, ask the opening questions
    (and list what was read but not used: a chart of records entered in error is not an empty chart)."""
    as_of = chart.as_of or now
    try:
        if not chart.bundle["entry"]:
            raise NoFacts("nothing recorded")  # an empty Bundle is a 400 to $assess; here it is a patient
        assessment = assessor.run(chart.bundle, as_of=chart.as_of, output="transaction", now=now)
    except NoFacts as nothing:
        person = demographics(chart.person, as_of)
        view = nothing_recorded(chart.patient, as_of, person, chart.form, assessor.table, not_used(nothing))
        return Turn(view, None, chart)
    if assessment.subject != f"Patient/{chart.patient}":
        raise Unprocessable("the data read is about another patient than the one launched", "patient")
    person = demographics(chart.person, assessment.as_of)
    view = screen(assessment, assessor.book, chart.form, chart.answered, person)
    return Turn(view, assessment, chart)
