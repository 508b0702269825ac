"""The API description and its browser view: ``GET /openapi.yaml`` and Swagger UI at ``GET /docs``.

Integration engineers read the same ``openapi.yaml`` the tests check every response against, so the
document served here is the file at the repository root, never a copy that could drift. Swagger UI comes
from the installed ``swagger_ui_bundle`` package and the page is this module's own: nothing is loaded from
a CDN or any other origin (hospital networks often block them, and a third-party script on a page next to
clinical endpoints is a supply-chain risk), and a strict Content-Security-Policy holds the page to that.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_file, send_from_directory
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # ships no py.typed

from service.errors import NotFound
from service.packaged import OPENAPI_FILE
from service.web.responses import locked_down

bp = Blueprint("docs", __name__)

SWAGGER_UI = Path(swagger_ui_path)
# The only files of the bundle the page uses; anything else under /docs/ is a 404.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"})

# Same origin only. 'unsafe-inline' for styles because Swagger UI (React) sets style attributes at run time;
# img-src data: because its icons are inline data: URIs. Scripts are never inline (init.js is a file).
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'"
)

INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>neckcheck API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io (another origin).
INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
};
"""


def _strict(response: Response) -> Response:
    return locked_down(response, CSP)


@bp.get("/openapi.yaml")
def openapi() -> Response:
    """The file itself, so what is served is exactly what the contract tests validate against."""
    return send_file(OPENAPI_FILE, mimetype="application/yaml", max_age=0)


@bp.get("/docs")
def index() -> Response:
    return _strict(Response(INDEX, mimetype="text/html"))


@bp.get("/docs/init.js")
def init() -> Response:
    """A file rather than an inline script, so ``script-src 'self'`` needs no 'unsafe-inline' or hash."""
    return _strict(Response(INIT, mimetype="text/javascript"))


@bp.get("/docs/<name>")
def asset(name: str) -> Response:
    """Only the three bundle files the page loads; send_from_directory also refuses path traversal."""
    if name not in ASSETS:
        raise NotFound(f"no such file under /docs: {name[:64]!r}")
    return _strict(send_from_directory(SWAGGER_UI, name, max_age=3600))
