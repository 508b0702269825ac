"""A FHIR Bulk Data export client (Bulk Data Access IG 2.0.0, "Export" and its asynchronous pattern).

``neckcheck screen https://ehr/fhir/Group/<id>`` exports a population here, then screens the files as it
screens an export on disk. This module speaks the protocol: what the server says it offers (its
CapabilityStatement names the $export operation at the level asked), the kick-off with
``Prefer: respond-async``, polling the status URL, the manifest, and streaming each file to disk, with the
SMART Backend Services token (backend_auth) where the server asks for one. What a run keeps on disk and
how it resumes is the caller's (service/screen/export.py).

Nothing is assumed of the server: a missing capability is a ``NotSupportedByServer`` naming it, every
other failure a ``RemoteExportError`` with the server's own words (OperationOutcome diagnostics) where it
gave some. A wait the server asks for (``Retry-After`` on 202, 429 or 503) is honoured, within the
deadline; with none, waits grow from 1 s to a minute. A bearer token goes only to the FHIR server's own
origin, and over ``https`` unless the server is this machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from service.errors import NotSupportedByServer, RemoteExportError
from service.reader.backend_auth import BackendToken
from service.reader.bulk_answers import (
    broke,
    json_body,
    manifest,
    printable,
    refusal,
    retry_after,
    said,
    starts_at,
    transient,
)
from service.reader.bulk_request import Request

FHIR_JSON = "application/fhir+json"
TIMEOUT = (10.0, 120.0)  # connect; and the longest silence while a body streams in
MAX_WAIT = 60.0  # the longest pause between polls when the server names none
ATTEMPTS = 3  # tries of a request after connection failures, and of a download after cut-offs
BLOCK = 1 << 20

Sleep = Callable[[float], None]


@dataclass
class Watch:
    """What the caller is told as the export goes: the server's X-Progress, bytes downloaded, notes."""

    status: Callable[[str], None]
    received: Callable[[int], None]
    note: Callable[[str], None]


class BulkClient:
    """One export's conversation with one server; ``token`` is None for a server that asks for none."""

    def __init__(
        self,
        session: requests.Session,
        request: Request,
        token: BackendToken | None,
        watch: Watch,
        sleep: Sleep = time.sleep,
    ):
        self.session, self.request, self.token, self.watch, self.sleep = session, request, token, watch, sleep
        self.base = request.endpoint.base

    def check_offered(self) -> None:
        """Raises NotSupportedByServer unless the CapabilityStatement names $export at the level asked
        (Bulk Data IG 2.0: system on ``rest.operation``, Patient and Group on that resource's)."""
        answer = self._send("GET", f"{self.base}/metadata")
        statement = json_body(answer, "GET metadata")
        rests = [r for r in statement.get("rest", []) if isinstance(r, dict) and r.get("mode") == "server"]
        level = self.request.endpoint.level
        for rest in rests:
            if level == "system":
                operations = rest.get("operation", [])
            else:
                wanted = "Patient" if level == "patient" else "Group"
                found = [
                    r for r in rest.get("resource", []) if isinstance(r, dict) and r.get("type") == wanted
                ]
                operations = found[0].get("operation", []) if found else []
            if any(isinstance(op, dict) and op.get("name") == "export" for op in operations):
                return
        raise NotSupportedByServer(
            f"{self.base} does not offer {self.request.endpoint.what} $export (Bulk Data): "
            "its CapabilityStatement lists no such operation"
        )

    def kick_off(self) -> str:
        """Start the export; its status URL. With ``handling=strict`` a server that does not support a
        parameter says so rather than ignoring it; refused with _typeFilter, it is asked once without
        (a filter only spares the download: screening reads what it needs either way)."""
        headers = {"Accept": FHIR_JSON, "Prefer": "respond-async, handling=strict"}
        filters = bool(self.request.type_filters)
        while True:
            params = self.request.params(filters)
            answer = self._send("GET", self.request.endpoint.kickoff, headers=headers, params=params)
            if answer.status_code == 202:
                break
            if filters and 400 <= answer.status_code < 500 and answer.status_code not in (401, 403):
                self.watch.note(
                    f"the server refused _typeFilter ({said(answer)}): exporting every resource of the "
                    "types screening reads"
                )
                filters = False
                continue
            raise refusal(answer, f"the {self.request.endpoint.what} $export kick-off")
        location = answer.headers.get("Content-Location")
        if not location:
            raise RemoteExportError(
                "the server accepted the export but named no status URL (Content-Location)"
            )
        return self._own(urljoin(answer.url, location), "the status URL")

    def wait(self, status_url: str, deadline: float) -> dict[str, Any]:
        """Poll until the manifest (200); raises RemoteExportError when the job fails, is gone, or the
        ``deadline`` (time.monotonic) passes first."""
        polls = 0
        while True:
            answer = self._send("GET", status_url, headers={"Accept": "application/json"}, deadline=deadline)
            if answer.status_code == 200:
                return manifest(answer)
            if answer.status_code != 202 and not transient(answer):
                raise refusal(answer, "the export")
            progress = answer.headers.get("X-Progress")
            if progress:
                self.watch.status(f"exporting, the server says: {printable(progress)}")
            polls += 1
            self._pause(retry_after(answer) or min(MAX_WAIT, 2.0 ** min(polls - 1, 6)), deadline)

    def cancel(self, status_url: str) -> bool:
        """DELETE the job (asked on Ctrl-C, and once the files are down); whether the server took it."""
        try:
            answer = self._send("DELETE", status_url, attempts=1, timeout=(5.0, 10.0))
        except RemoteExportError:
            return False
        return answer.status_code in (200, 202, 204)

    def fetch(self, url: str, part: Path, requires_token: bool) -> None:
        """Stream ``url`` into ``part``, trying again after a cut-off from where it stopped when the
        server offers byte ranges (it answers ``Range`` with 206), else from the start. A ``part`` left by
        an earlier run is continued the same way."""
        token = requires_token and self.token is not None
        if token:
            self._own(url, "a file")
        for attempt in range(1, ATTEMPTS + 1):
            have = part.stat().st_size if part.exists() else 0
            headers = {"Accept": "application/fhir+ndjson", "Accept-Encoding": "identity"}
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                return self._receive(url, headers, token, part)
            except _Cut as cut:
                if attempt == ATTEMPTS:
                    raise RemoteExportError(f"downloading {url}: {cut.reason}, {ATTEMPTS} times") from cut
                self.watch.note(f"downloading {url}: {cut.reason}; trying again")
                self.sleep(float(attempt))

    def _receive(self, url: str, headers: dict[str, str], token: bool, part: Path) -> None:
        """One GET of the file into ``part``: appended to when the server sent the range asked for (206
        from the part's end), written anew when it sent the whole file (200)."""
        answer = self._send("GET", url, headers=headers, auth=token, stream=True)
        try:
            have = part.stat().st_size if part.exists() else 0
            if (answer.status_code == 206 and not starts_at(answer, have)) or answer.status_code == 416:
                part.unlink(missing_ok=True)  # not the range asked for: start again from the first byte
                raise _Cut(f"the server sent another byte range ({answer.status_code})")
            if answer.status_code in (500, 502, 504):  # 503 and 429 are waited out by _send
                raise _Cut(f"the server answered {answer.status_code}")
            if answer.status_code not in (200, 206):
                raise refusal(answer, f"downloading {url}")
            with part.open("ab" if answer.status_code == 206 else "wb") as out:
                self._copy(answer, out)
        finally:
            answer.close()

    def _copy(self, answer: requests.Response, out: BinaryIO) -> None:
        """The body into ``out`` as it arrives (``read1``: what came before a cut-off is kept, for the
        range that continues it); a body shorter than its Content-Length is a cut-off too."""
        got = 0
        while True:
            try:
                block = answer.raw.read1(BLOCK)
            except (Urllib3Error, OSError) as exc:
                raise _Cut(f"the connection broke off ({type(exc).__name__})") from exc
            if not block:
                break
            out.write(block)
            got += len(block)
            self.watch.received(len(block))
        length = answer.headers.get("Content-Length", "")
        if length.isdigit() and got != int(length):
            raise _Cut(f"the connection broke off after {got:,} of {int(length):,} bytes")

    def _send(
        self,
        method: str,
        url: str,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
        deadline: float | None = None,
        attempts: int = ATTEMPTS,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> requests.Response:
        """One request, with the token (asked again once if refused as expired), waiting out 429 and 503
        as the server asks and trying again after connection failures; the answer, whatever its status."""
        renewed = False
        tries = 0
        while True:
            sent = dict(headers or {})
            if auth and self.token is not None:
                sent.update(self.token.header())
            try:
                answer = self.session.request(
                    method,
                    url,
                    headers=sent,
                    params=params,
                    stream=stream,
                    timeout=timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                tries += 1
                if tries >= attempts:
                    raise RemoteExportError(f"{method} {url}: {broke(exc)}") from exc
                self.sleep(float(tries))
                continue
            if answer.status_code == 401 and auth and self.token is not None and not renewed:
                answer.close()
                self.token.renew()  # a token the server holds expired: SMART asks the client to get another
                renewed = True
                continue
            if answer.status_code in (429, 503) and method != "DELETE":
                wait = retry_after(answer) or min(MAX_WAIT, float(2 ** (tries + 1)))
                answer.close()
                tries += 1
                if deadline is None and tries >= attempts * 4:
                    raise RemoteExportError(f"{method} {url}: the server stayed busy ({answer.status_code})")
                self._pause(wait, deadline)
                continue
            return answer

    def _pause(self, seconds: float, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() + seconds > deadline:
            raise RemoteExportError("the export did not finish within --export-timeout")
        self.sleep(max(0.2, seconds))

    def _own(self, url: str, what: str) -> str:
        """``url`` when it is on the FHIR server's origin, which alone may receive the token."""
        if _origin(url) != _origin(self.base):
            raise RemoteExportError(
                f"{what} {url[:100]} is not on {self.base}: the access token is not sent to another server"
            )
        return url


class _Cut(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (
        parts.scheme,
        (parts.hostname or "").lower(),
        parts.port or {"http": 80, "https": 443}.get(parts.scheme),
    )
