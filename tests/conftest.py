"""Shared fixtures: the app, its client, and builders that let a test state its facts in one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.assess import Assessor
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
        base = {"database_url": f"sqlite:///{tmp_path / 'neckcheck.db'}", "insecure_dev": True}
        return create_app({**base, **settings})

    return build


@pytest.fixture()
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver on loopback only, on a free port."""
    return ("127.0.0.1", 0)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["FIXTURES", "bundle_of", "load", "observation", "summary"]
