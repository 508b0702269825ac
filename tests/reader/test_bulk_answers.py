"""How the export client reads a server's answers: the wait it asks for, and whether a failed poll is
worth another."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import pytest
import requests

from service.reader.bulk_answers import retry_after, said, transient


def answer(status: int, headers: dict[str, str] | None = None, body: Any = None) -> requests.Response:
    built = requests.Response()
    built.status_code = status
    built.headers.update(headers or {})
    built._content = json.dumps(body).encode() if body is not None else b""
    return built


def outcome(*codes: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": c, "diagnostics": f"said {c}"} for c in codes],
    }


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after(answer(429, {"Retry-After": "120"})) == 120
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after(answer(503, {"Retry-After": later})) or 0) <= 31
    assert retry_after(answer(202)) is None
    assert retry_after(answer(202, {"Retry-After": "soon"})) is None


@pytest.mark.parametrize(
    ("body", "again"),
    [
        (outcome("transient"), True),  # IG 2.0: a failed poll, not a failed job
        (outcome("transient", "transient"), True),
        (outcome("exception"), False),  # the job failed
        (outcome("transient", "processing"), False),
        ({"resourceType": "Patient"}, False),
        (None, False),
    ],
)
def test_only_a_transient_outcome_is_polled_again(body: Any, again: bool) -> None:
    assert transient(answer(500, body=body)) is again


def test_the_servers_words_are_quoted_without_control_characters() -> None:
    assert said(answer(500, body=outcome("exception"))) == "500: said exception"
    broken = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "line\nbreak\x1b[31m"}]}
    assert said(answer(400, body=broken)) == "400: line?break?[31m"
    assert said(answer(502)) == "502"
