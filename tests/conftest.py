"""Shared fixtures: the app, its client, and builders that let a test state its facts in one line."""

from __future__ import annotations

import json
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
def app() -> Flask:
    return create_app({})


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["FIXTURES", "bundle_of", "load", "observation", "summary"]
