"""Shared fixtures: the app, its client, and builders that let a test state its facts in one line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service.app import create_app
from service.assess import Assessor
from tests.fhir_server import FhirServer, running
from tests.openapi_contract import check_response
from tests.postgres import Cluster
from tests.scenarios import AS_OF
from tests.support import bundle_of, observation, summary

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def assessor() -> Assessor:
    return Assessor.load()


@pytest.fixture()
def make_app(tmp_path: Path) -> Callable[..., Flask]:
    """An app with its own database under ``tmp_path``; keyword arguments are settings.

    Tests of the engine run with NECKCHECK_INSECURE_DEV (no tokens); the security tests say
    ``insecure_dev=False`` to get the production default.
    """

    def build(**settings: Any) -> Flask:
        base = {
            "database_url": f"sqlite:///{tmp_path / 'neckcheck.db'}",
            "spool_dir": tmp_path / "spool",
            "insecure_dev": True,
        }
        app = create_app({**base, **settings})
        app.test_client_class = ContractClient  # every response checked against openapi.yaml
        # The scenarios are dated 2026-03-10; a call that takes its evaluation time from the clock (a hook,
        # the app) assesses them as of then, as an EHR would have that morning. Tests of the clock set it.
        app.extensions["neckcheck.clock"] = lambda: AS_OF
        return app

    return build


@pytest.fixture()
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A real PostgreSQL server on 127.0.0.1 for the whole run (installed from Debian if missing)."""
    cluster = Cluster()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    """A real FHIR R4 server (SEKMET, from PyPI) on 127.0.0.1 for the whole run; its data in a temp folder.

    Shared by every test that asks for it: load a sample patient under an id of the test's own."""
    with running(tmp_path_factory.mktemp("fhir-server")) as server:
        yield server


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver on loopback only, on a free port."""
    return ("127.0.0.1", 0)


class ContractClient(FlaskClient):
    """A test client that checks every response against openapi.yaml (tests/openapi_contract.py)."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response: TestResponse = super().open(*args, **kwargs)
        request = response.request
        check_response(
            request.method,
            request.path,
            request.args,
            request.headers,
            None,  # already read by the app; the response check does not need it
            response.status_code,
            response.headers,
            response.get_data(),
        )
        return response


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    """Every response a test gets through this client must be one openapi.yaml describes."""
    return app.test_client()


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["FIXTURES", "bundle_of", "load", "observation", "summary"]
