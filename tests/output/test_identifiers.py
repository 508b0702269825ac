"""Deterministic identifiers: stable_uuid is exactly the standard library's name-based UUID (version 5)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.ids import NAMESPACE, stable_uuid


@given(digest=st.text(), name=st.text())
def test_stable_uuid_is_uuid5_of_digest_and_name(digest: str, name: str) -> None:
    try:
        expected = str(uuid.uuid5(NAMESPACE, f"{digest}/{name}"))
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: no id either way
        with pytest.raises(UnicodeEncodeError):
            stable_uuid(digest, name)
        return
    assert stable_uuid(digest, name) == expected


def test_a_known_id_stays_the_same() -> None:
    """The ids are in golden files and in EHRs' stores: the derivation must never drift."""
    assert stable_uuid("0" * 64, "RiskAssessment") == "39a392ec-43b6-5da9-b953-9c17ab2a12b7"
