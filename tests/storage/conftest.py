"""Fixtures of the storage tests: each test that takes ``database_url`` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.postgres import Cluster

_names = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    cluster: Cluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"store_{next(_names)}")
