"""``GET /``: the front door a newcomer reaches after ``make run``, instead of a JSON 404.

It says what the service is (version, rule set) and where to go next: the clinician app's demo, the API
description, the FHIR capability statement, the CDS Hooks discovery and the integration steps. Every other
unknown route keeps its FHIR OperationOutcome 404.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, current_app, send_from_directory

from service.packaged import UI_STATIC
from service.web.auth import public_base
from service.web.responses import locked_down

bp = Blueprint("home", __name__)

# same origin only; no inline script or style anywhere on these pages
CSP = "default-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>neckcheck {version}</title>
<link rel="stylesheet" href="/home.css">
<link rel="icon" href="/home.svg" type="image/svg+xml">
</head>
<body>
<header>
<h1>neckcheck <span class="version">{version}</span></h1>
<p>Clinical decision support for facial numbness with neck pain: when to escalate.
Rule set <strong>{rules}</strong>. It proposes; a clinician decides.</p>
</header>
<main>
<section aria-labelledby="try">
<h2 id="try">Look around</h2>
<ul>
{demo}<li><a href="/docs">API documentation</a> (Swagger UI of <a href="/openapi.yaml">openapi.yaml</a>)</li>
<li><a href="/fhir/metadata">FHIR CapabilityStatement</a>,
<a href="/fhir/Questionnaire/neckcheck-screen">the screening Questionnaire</a> and
<a href="/fhir/PlanDefinition/neckcheck-escalation">the rules as a PlanDefinition</a></li>
<li><a href="/cds-services">CDS Hooks discovery</a></li>
<li><a href="/readyz">Readiness</a> and <a href="/metrics">metrics</a></li>
</ul>
</section>
<section aria-labelledby="integrate">
<h2 id="integrate">Integrate it</h2>
<ol>
<li>Assess one patient: <code>POST /fhir/$assess</code> with a FHIR R4 Bundle of Observations and/or a
QuestionnaireResponse; the answer is a RiskAssessment with draft ServiceRequests.</li>
<li>Show it in the EHR: register <code>{base}/cds-services</code> as a CDS Hooks service
(<code>patient-view</code>, <code>order-sign</code>).</li>
<li>Trust the EHR: list its issuer, public keys and FHIR servers in
<code>NECKCHECK_TRUSTED_ISSUERS_FILE</code>, and set <code>NECKCHECK_PUBLIC_URL</code>.</li>
<li>Deploy the container with PostgreSQL for several replicas; the steps are in the repository,
<code>docs/operations/deploy.md</code>.</li>
</ol>
</section>
</main>
</body>
</html>
"""


DEMO = """<li><a href="/app/demo">Demo: the clinician app on sample patients</a> (what a clinician sees
when a card opens it: the result, the questions still to ask, the final answer)</li>
"""


def _strict(response: Response) -> Response:
    return locked_down(response, CSP)


@bp.get("/")
def home() -> Response:
    assessor = current_app.extensions["neckcheck.assessor"]
    page = PAGE.format(
        version=escape(current_app.config["NECKCHECK_VERSION"]),
        rules=escape(f"{assessor.table.id} {assessor.table.version}"),
        base=escape(public_base()),
        demo=DEMO if current_app.config["NECKCHECK_SETTINGS"].app_demo else "",  # no link to a 404
    )
    return _strict(Response(page, mimetype="text/html"))


@bp.get("/home.css")
def stylesheet() -> Response:
    return _strict(send_from_directory(UI_STATIC, "home.css", max_age=3600))


@bp.get("/home.svg")
def icon() -> Response:
    """The page's icon (browsers ask for one; without it every visit logs a 404)."""
    return _strict(send_from_directory(UI_STATIC, "home.svg", max_age=3600))
