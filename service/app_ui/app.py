"""``/app/``: the SMART on FHIR clinician app, served by the service itself, and its demo.

CDS Hooks cards link here (a ``smart`` link to ``/app/launch``). The page:
- launches: ``/app/launch?iss=&launch=`` runs the SMART App Launch 2.x EHR launch (discovery, PKCE) with
  the vendored fhirclient library, which returns to ``/app/``;
- reads an open FHIR server: ``/app/?iss=<base>&patient=<id>`` (insecure dev only; no authorization);
- runs the demo: ``/app/?sample=<id>&patient=<id>`` on a packaged sample, writing nowhere. The demo
  (``/app/demo`` and the samples) is there only when NECKCHECK_APP_DEMO=1 (``make run``); else a 404.
Each turn posts to ``/app/api/assess``; the service verifies the caller's token before it reads anything
(service/security/app_tokens.py), reads the patient's data itself (service.app_ui.loop), writes the
turn's audit record and answers with what to show. Saving to the chart is the browser's one write, with
the clinician's own token, to the EHR's FHIR server.

Pages carry a strict Content-Security-Policy: scripts and styles from this service only, connections to
this service and the FHIR servers the service trusts (loopback in insecure dev), plus the EHR origins an
operator names (NECKCHECK_APP_EHR_ORIGINS: an authorization server elsewhere, a page that frames the app).
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, current_app, request, send_from_directory

from service.app_ui import vendor
from service.app_ui.loop import Reader, Turn, assess_chart, read_chart
from service.app_ui.samples import samples
from service.assess import parse_json
from service.errors import NeckcheckError, NotFound, PrefetchUnavailable, Unsupported
from service.fhir_base import FhirBase
from service.packaged import UI_STATIC
from service.payloads.app import app_assess_request
from service.security.fhir_servers import FhirServerPolicy
from service.storage.audit import NOT_ASSESSED
from service.web.auth import bearer_token, record, record_unassessed, require_app_token, settings
from service.web.responses import json_response, locked_down

bp = Blueprint("app", __name__, url_prefix="/app")

ASSETS = ("app.js", "app.css")

SHELL = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>neckcheck: facial numbness with neck pain</title>
<link rel="stylesheet" href="/app/app.css">
<link rel="icon" href="/home.svg" type="image/svg+xml">
<script src="/app/vendor/fhir-client.js" defer></script>
<script src="/app/app.js" defer></script>
</head>
<body>
<header class="bar"><a href="/">neckcheck</a> <span>{rules}</span></header>
<main id="app" data-client-id="{client_id}" data-scope="{scope}"{demo_list}>
<h1>Facial numbness with neck pain: when to escalate</h1>
<p id="state" role="status" aria-live="polite">Loading…</p>
</main>
</body>
</html>
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/app/app.css">
<link rel="icon" href="/home.svg" type="image/svg+xml">
</head>
<body>
<header class="bar"><a href="/">neckcheck</a> <span>{rules}</span></header>
<main>
{main}
</main>
</body>
</html>
"""

DEMO = """<h1>Demo: sample patients</h1>
<p>The public test scenarios as patients, and one with nothing on record (S0). Choosing one opens the
clinician app on that sample's data, as a CDS Hooks card would open it from an EHR. Nothing is read from or
written to any chart. Samples are assessed as of their own date; their names, sexes and birth dates are
made up.</p>
<ul class="samples">
{items}
</ul>"""

DEMO_OFF = """<h1>The demo is switched off on this server</h1>
<p>This neckcheck serves the clinician app to EHRs only. The demo with sample patients runs where
<code>NECKCHECK_APP_DEMO=1</code> is set, as <code>make run</code> sets it.</p>"""


def _demo_only() -> None:
    """The demo's samples are served only with NECKCHECK_APP_DEMO=1: a clear 404 otherwise."""
    if not settings().app_demo:
        raise NotFound("the demo is switched off on this server (NECKCHECK_APP_DEMO=0)", "sample")


def _csp() -> str:
    s = settings()
    origins = sorted({f"{b.scheme}://{b.host}:{b.port}" for b in _trusted_servers()})
    if s.insecure_dev:
        origins += ["http://127.0.0.1:*", "http://localhost:*"]
    extra = s.app_ehr_origins.split()
    connect = " ".join(["'self'", *origins, *extra])
    frames = " ".join(["'self'", *extra])
    return (
        f"default-src 'self'; connect-src {connect}; img-src 'self' data:; object-src 'none'; "
        f"frame-ancestors {frames}; base-uri 'none'; form-action 'self'"
    )


def _trusted_servers() -> frozenset[FhirBase]:
    """The FHIR servers the app may read: those whose tokens can be checked (none in insecure dev)."""
    tokens = current_app.extensions["neckcheck.app_tokens"]
    servers: frozenset[FhirBase] = tokens.servers() if tokens is not None else frozenset()
    return servers


def _policy() -> FhirServerPolicy:
    """Where the app may make the service read: the servers above; loopback in insecure dev."""
    if settings().insecure_dev:
        return FhirServerPolicy.insecure_dev()
    return FhirServerPolicy("the clinician app", _trusted_servers())


def _page(html: str, status: int = 200) -> Response:
    response = locked_down(Response(html, status=status, mimetype="text/html"), _csp())
    response.headers["Cache-Control"] = "no-store"  # the page carries per-launch state in its URL
    response.headers["Referrer-Policy"] = "no-referrer"  # ... which no link may pass on
    return response


def _rules() -> str:
    assessor = current_app.extensions["neckcheck.assessor"]
    return escape(f"rule set {assessor.table.id} {assessor.table.version}")


@bp.get("/")
@bp.get("/launch")
def shell() -> Response:
    """The app's one page; its script tells launch, return from authorization, open server and demo apart."""
    if vendor.missing():
        raise PrefetchUnavailable(
            "the app's browser library is missing from this build (service/app_ui/static/vendor/, "
            "kept in the repository; `make vendor` fetches it again)",
            "app",
        )
    s = settings()
    return _page(
        SHELL.format(
            rules=_rules(),
            client_id=escape(s.app_client_id),
            scope=escape(s.app_scopes),
            demo_list=' data-demo-list="/app/demo"' if s.app_demo else "",
        )
    )


@bp.get("/demo")
def demo() -> Response:
    if not settings().app_demo:
        return _page(PAGE.format(title="neckcheck: no demo here", rules=_rules(), main=DEMO_OFF), 404)
    items = "\n".join(
        f'<li><a href="/app/?sample={escape(s.id)}&amp;patient={escape(s.patient)}">'
        f"<strong>{escape(s.id)}</strong> {escape(s.title)}</a></li>"
        for s in samples()
    )
    main = DEMO.format(items=items)
    return _page(PAGE.format(title="neckcheck demo: sample patients", rules=_rules(), main=main))


@bp.get("/<asset>")
def asset(asset: str) -> Response:
    if asset not in ASSETS:
        raise NotFound(f"/app/{asset[:64]} not found")
    return locked_down(send_from_directory(UI_STATIC, asset, max_age=300), _csp())


@bp.get("/vendor/<name>")
def vendored(name: str) -> Response:
    shipped = {f for spec in vendor.pins().values() for f in spec["files"].values()}
    if name not in shipped or not (vendor.TARGET / name).is_file():
        raise NotFound(f"/app/vendor/{name[:64]} not found")
    return locked_down(send_from_directory(vendor.TARGET, name, max_age=3600), _csp())


@bp.post("/api/assess")
def assess() -> Response:
    """One turn of the app: the patient's data read by the service, plus the clinician's answers.

    The token is checked before anything is read; every turn that read a chart writes one audit record
    naming the verified caller, whether it gave a result, found nothing on record, or could not be
    assessed. The demo reads packaged samples and records nothing.
    """
    if (request.mimetype or "").lower() != "application/json":
        raise Unsupported(
            f"Content-Type {str(request.content_type)[:60]!r} is not supported; send application/json"
        )
    payload = app_assess_request(parse_json(request.get_data(cache=False)))
    ext = current_app.extensions
    assessor, now = ext["neckcheck.assessor"], ext["neckcheck.clock"]()
    reader = Reader(ext["neckcheck.fhir_client"], _policy(), ext["neckcheck.prefetch_templates"])
    if "sample" in payload:
        _demo_only()
        return _answer(assess_chart(read_chart(payload, None, assessor, reader, now), assessor, now))
    token = bearer_token()
    readable = require_app_token(
        token, payload["fhirServer"], payload["patient"], reader.searched_types(), reader.context_types()
    )
    chart = read_chart(payload, token, assessor, reader, now, readable)
    try:
        turn = assess_chart(chart, assessor, now)
    except NeckcheckError:  # read, though what came back could not be assessed
        record_unassessed(chart.bundle, "app", NOT_ASSESSED)
        raise
    if turn.assessment is not None:
        record(turn.assessment, chart.bundle, "app")
    else:
        record_unassessed(chart.bundle, "app")
    return _answer(turn)


def _answer(turn: Turn) -> Response:
    response = json_response(turn.view)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
