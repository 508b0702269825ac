"""One turn of the clinician app: read the patient's data, add the clinician's answers, assess, and say
what to show. Free of Flask, like ``service.cds.hook``, so tests and the CLI can drive it without HTTP.

The data is read by the service, not trusted from the browser: from a FHIR server with the searches of
the CDS prefetch (``service.cds.prefetch.gather``, the same deadline and the same list of servers a caller
may make us contact), under the clinician's SMART access token, or from a packaged demo sample.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from service.app_ui.answers import answers_response
from service.app_ui.samples import sample
from service.app_ui.screen import nothing_recorded, resource_times, screen
from service.assess import Assessment, Assessor
from service.cds.discovery import PATIENT
from service.cds.fhir_client import FhirClient
from service.cds.prefetch import gather
from service.errors import NoFacts, Unprocessable
from service.output.artefacts import questionnaire
from service.output.references import fhir_datetime
from service.security.fhir_servers import FhirServerPolicy

JSON = dict[str, Any]


@dataclass(frozen=True)
class Turn:
    view: JSON  # what the page shows (service.app_ui.screen)
    assessment: Assessment | None  # None: nothing recorded that the rules read
    bundle: JSON  # what was assessed (for the audit record)
    demo: bool


@dataclass(frozen=True)
class Reader:
    """Where a turn may read FHIR data from, and how."""

    client: FhirClient
    policy: FhirServerPolicy
    templates: dict[str, str]


def run_turn(request: JSON, token: str | None, assessor: Assessor, reader: Reader, now: dt.datetime) -> Turn:
    """``request``: an ``AppAssessSchema`` payload; ``token``: the SMART access token for its FHIR server."""
    patient = request["patient"]
    if "sample" in request:
        chosen = sample(request["sample"])
        if chosen.patient != patient:
            raise Unprocessable(f"sample {chosen.id} is about another patient", "patient")
        resources, as_of = list(chosen.resources), chosen.as_of
    else:
        hook_like = {
            "context": {"patientId": patient},
            "fhirServer": request["fhirServer"],
            "prefetch": {},
        }
        if token:
            hook_like["fhirAuthorization"] = {"access_token": token}
        # the app's scopes read Observations and QuestionnaireResponses only, not the Patient resource
        searches = {key: path for key, path in reader.templates.items() if key != PATIENT}
        gathered = gather(hook_like, searches, reader.client, reader.policy)
        resources = [r for r in gathered.resources if r.get("resourceType") != "Patient"]
        as_of = None
    form = questionnaire(assessor.table, assessor.book)
    answered = None
    entries: list[JSON] = [{"resource": r} for r in resources]
    if any(v is not None for v in (request.get("answers") or {}).values()):
        answered = answers_response(
            request["answers"], patient, as_of or now, form, assessor.table, assessor.book
        )
        entries.append({"fullUrl": answered[0], "resource": answered[1]})
    bundle: JSON = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    try:
        if not entries:
            raise NoFacts("nothing recorded")  # an empty Bundle is a 400 to $assess; here it is a patient
        assessment = assessor.run(bundle, as_of=as_of, output="transaction", now=now)
    except NoFacts:
        view = nothing_recorded(patient, fhir_datetime(as_of or now), form, assessor.table)
        return Turn(view, None, bundle, "sample" in request)
    if assessment.intake.subject.get("reference") != f"Patient/{patient}":
        raise Unprocessable("the data read is about another patient than the one launched", "patient")
    view = screen(assessment, assessor.table, assessor.book, form, resource_times(entries), answered)
    return Turn(view, assessment, bundle, "sample" in request)
