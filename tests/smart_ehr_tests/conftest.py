"""The FHIR server behind the simulated EHR: neckcheck itself under gunicorn, once per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import Server, running


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(tmp_path_factory.mktemp("upstream")) as server:
        yield server
