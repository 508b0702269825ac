"""What a Bulk Data server's answers say: a wait it asks for, a failure it reports (in its
OperationOutcome's words), the manifest, a byte range. Read here once, so the client (bulk.py) deals in
what the answer means rather than in status codes.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any

import requests

from service.errors import RemoteExportError


class ExportGone(RemoteExportError):
    """The server no longer knows the job or its files (404, 410): expired, or removed."""


def starts_at(answer: requests.Response, offset: int) -> bool:
    found = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", answer.headers.get("Content-Range", ""))
    return found is not None and int(found.group(1)) == offset


def retry_after(answer: requests.Response) -> float | None:
    """Retry-After as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), or None."""
    value = answer.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def transient(answer: requests.Response) -> bool:
    """An error status whose OperationOutcome says only ``transient``: poll again (IG 2.0, "Response -
    Error Status": a server signals a failed poll that is not a failed job that way)."""
    codes = [i.get("code") for i in issues(answer)]
    return bool(codes) and all(code == "transient" for code in codes)


def issues(answer: requests.Response) -> list[dict[str, Any]]:
    try:
        body = answer.json()
    except ValueError:
        return []
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return []
    return [i for i in body.get("issue", []) if isinstance(i, dict)]


def said(answer: requests.Response) -> str:
    """The server's own words: its OperationOutcome's diagnostics or text, else the status."""
    words = [str(i.get("diagnostics") or i.get("details", {}).get("text") or "") for i in issues(answer)]
    words = [w for w in words if w]
    return f"{answer.status_code}: {printable('; '.join(words))}" if words else str(answer.status_code)


def refusal(answer: requests.Response, what: str) -> RemoteExportError:
    status = answer.status_code
    if status == 401:
        return RemoteExportError(
            f"{what}: the server asks for authorisation ({said(answer)}): give --client-id and --key "
            "(SMART Backend Services)"
        )
    if status == 403:
        return RemoteExportError(
            f"{what}: the server refused the token's scopes ({said(answer)}): see --scope"
        )
    if status in (404, 410) and (what == "the export" or what.startswith("downloading")):
        return ExportGone(f"the server no longer has this export ({said(answer)})")
    return RemoteExportError(f"{what} failed ({said(answer)})")


def manifest(answer: requests.Response) -> dict[str, Any]:
    manifest = json_body(answer, "the export's manifest")
    outputs = manifest.get("output")
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("url"), str) and isinstance(o.get("type"), str)
        for o in outputs
    ):
        raise RemoteExportError(
            "the export's manifest has no valid 'output' list (type and url of each file)"
        )
    return manifest


def json_body(answer: requests.Response, what: str) -> dict[str, Any]:
    if answer.status_code != 200:
        raise refusal(answer, what)
    try:
        body = answer.json()
    except ValueError as exc:
        raise RemoteExportError(f"{what}: the answer is not JSON") from exc
    if not isinstance(body, dict):
        raise RemoteExportError(f"{what}: the answer is not a JSON object")
    return body


def printable(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)[:200]


def broke(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect, or the connection broke off"
    return f"request failed ({type(exc).__name__})"
