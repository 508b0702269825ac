"""openapi.yaml is a valid OpenAPI document, served as is, and browsable at /docs without another origin."""

from __future__ import annotations

import re

import pytest
import yaml
from flask.testing import FlaskClient

from service.http.docs import CSP
from tests.openapi_contract import SPEC_PATH, spec_dict

ASSETS = ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui-standalone-preset.js"]


def test_the_document_is_valid_openapi_3_0() -> None:
    document = spec_dict()  # validates against the OpenAPI 3.0 meta-schema
    assert document["openapi"] == "3.0.3"  # Swagger UI 4.15 does not fully render 3.1


def test_every_flask_route_is_in_the_document(client: FlaskClient) -> None:
    paths = set(spec_dict()["paths"])
    app = client.application
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/docs/"):
            continue
        documented = re.sub(r"<(?:\w+:)?(\w+)>", "{id}", rule.rule)
        assert documented in paths, rule.rule


def test_openapi_yaml_is_served_and_is_the_same_document(client: FlaskClient) -> None:
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert yaml.safe_load(response.get_data()) == yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def test_docs_page_loads_only_same_origin_files_under_a_strict_csp(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP
    html = response.get_data(as_text=True)
    assert "http" not in html  # no absolute URL at all: nothing from a CDN or another origin
    assert "<script>" not in html  # no inline script, so script-src 'self' suffices
    for src in [*ASSETS, "/docs/init.js"]:
        assert f'"{src}"' in html


def test_init_script_points_at_the_served_document(client: FlaskClient) -> None:
    response = client.get("/docs/init.js")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == CSP
    script = response.get_data(as_text=True)
    assert 'url: "/openapi.yaml"' in script
    assert "validatorUrl: null" in script  # else Swagger UI posts the document to validator.swagger.io


@pytest.mark.parametrize("path", ASSETS)
def test_each_swagger_ui_asset_is_served(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert len(response.get_data()) > 1000
    assert response.headers["Content-Security-Policy"] == CSP


@pytest.mark.parametrize("path", ["/docs/index.html", "/docs/oauth2-redirect.html", "/docs/..%2Fapp.py"])
def test_nothing_else_under_docs_is_served(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404
