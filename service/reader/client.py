"""Read from the EHR's FHIR server when prefetch is missing (CDS Hooks 2.0.1 §FHIR Resource Access).

The EHR hands us ``fhirServer`` and ``fhirAuthorization.access_token``; this module is the only place that
talks to that server. It exists so that every way the call can go wrong (no route, no answer, a refused
token, a body that is not FHIR, no time left) becomes one ``FhirServerError`` with a short reason,
translated once here (style.md: errors from other libraries are translated at the boundary), and so that
the time a hook can spend waiting on the EHR has a bound that can be written down.

**One deadline per hook call.** CDS Hooks 2.0.1 asks a service to answer "on the order of 500 ms" and EHRs
drop services that are slower, so every hook call gets one ``Deadline`` (``NECKCHECK_CDS_FHIR_DEADLINE``,
2 s by default) for all of its FHIR reads together: every page of every search and every retry. Each GET's
connect and read timeouts are capped by the time left when it starts, each socket read of the body by the
time left at that read, and no retry, backoff pause or next page starts once the deadline has passed.
Past it the read fails with a ``FhirServerError``, so the hook answers the same 412 as for missing data.

The bound of one hook call's FHIR reads, with ``D`` the deadline and ``c`` the connect timeout, is
``D + min(c, D)``: the only wait not cut at the deadline is the status line of a GET whose connect ended
just before it (that wait is capped at the time left when the GET started). Within the deadline, one GET
(one page) with ``A = retries + 1`` attempts and read timeout ``r`` waits at most::

    A * (c + r)                             each attempt: connect, then wait for the status line
    + backoff * (2 + 4 + ... + 2**(A-2))    no pause before the first retry, then doubling
    + r                                     the whole body must arrive ``r`` after the headers

Read timeouts are never retried (a server that does not answer is not asked again), ``Retry-After`` is
ignored (a server could otherwise ask us to sleep for an hour) and redirects are not followed. Outside
the bound: DNS resolution (the system resolver's own timeout).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from service.errors import PrefetchUnavailable

log = logging.getLogger("neckcheck.cds.fhir_client")

FHIR_JSON = "application/fhir+json"
MAX_BODY_BYTES = 16 * 1024 * 1024  # a search page bigger than this is not one a hook should wait for
_CHUNK = 64 * 1024
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_DEFAULT_PORTS = {"http": 80, "https": 443}

# What a non-2xx answer means, said without the token or patient data; other codes fall back by class.
_STATUS_REASONS: dict[int, str] = {
    401: "the FHIR server refused the access token",
    403: "the FHIR server refused the access token",
    404: "the FHIR server has no such resource",
    410: "the FHIR server says the resource is gone",
    429: "the FHIR server is rate limiting us",
}


class FhirServerError(PrefetchUnavailable):
    """The EHR's FHIR server could not give us the data; ``reason`` says why, without token or patient data.

    A ``PrefetchUnavailable`` so the one Flask error handler answers it as 412 (CDS Hooks 2.0.1: "unable to
    retrieve the necessary FHIR data ... either through a prefetch request or directly calling the FHIR
    server") with no ``try/except`` of its own.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TokenRefusedByServer(FhirServerError):
    """The FHIR server refused the access token (401) or its scopes (403). A hook still answers 412 as for
    any missing data; the clinician app answers it as every other refusal of a token (a bare 401)."""


@dataclass(frozen=True)
class Deadline:
    """The moment (``time.monotonic``) by which one hook call's FHIR reads must be done, and its budget."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def left(self) -> float:
        return self.at - time.monotonic()

    def cap(self, seconds: float) -> float:
        """``seconds`` or the time left, whichever is less (never below 1 ms: 0 means "block" to sockets)."""
        return max(0.001, min(seconds, self.left()))

    def spent(self, what: str) -> FhirServerError:
        return FhirServerError(f"GET {what}: the {_secs(self.seconds)} time budget of the hook call ran out")


class _Retry(Exception):
    """One attempt failed in a way worth another (a connection error or a 5xx); ``reason`` says how."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def build_session() -> requests.Session:
    """Build the one ``requests.Session`` (connection pool) an app shares.

    requests' own adapters make no retries and follow no redirects here (``allow_redirects=False`` on every
    call); ``FhirClient`` does its retries itself, because only it knows how much time the hook has left.
    """
    return requests.Session()


class FhirClient:
    """GET resources and searches from a FHIR server over a shared session, with timeouts and a page cap.

    Holds no per-request state: the base URL, the token and the deadline come with each call (they belong
    to a hook request), so one client serves every request of the app. Only GET is sent, and only GET is
    retried (it is idempotent): on connection errors and 500/502/503/504, ``retries`` times.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        max_pages: int = 5,
        max_body_bytes: int = MAX_BODY_BYTES,
        budget: float = 2.0,
    ):
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self._session = session
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._retries = retries
        self._backoff = backoff
        self._max_pages = max_pages
        self._max_body_bytes = max_body_bytes
        self._budget = budget

    def deadline(self) -> Deadline:
        """A fresh deadline for one hook call's reads: now plus the configured budget."""
        return Deadline.after(self._budget)

    def read(
        self, base: str, path: str, token: str | None, deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """GET ``{base}/{path}`` and return the resource; its ``resourceType`` must match the path's type.

        ``Patient/123`` must come back as a Patient (an OperationOutcome with status 200 is an error, not
        data). Without a ``deadline`` the call gets a budget of its own. Raises ``FhirServerError``.
        """
        what = _describe(path)
        resource = self._get(_join(base, path), token, what, deadline or self.deadline())
        expected = _resource_type_of(path)
        if expected is not None and resource.get("resourceType") != expected:
            raise FhirServerError(f"GET {what}: expected a {expected}, got {_type_name(resource)}")
        return resource

    def search(
        self, base: str, path: str, token: str | None, deadline: Deadline | None = None
    ) -> list[dict[str, Any]]:
        """GET a search and return the matched resources of every page, following ``next`` links.

        Only entries whose ``search.mode`` is absent or ``match`` are returned: ``include`` entries
        (``_include``) and ``outcome`` entries (warnings) are not results. At most ``max_pages`` pages are
        fetched, all within the one ``deadline``; a search with more, or whose ``next`` link leaves
        ``base``'s origin (the token is for ``base`` only), is an error rather than a silent partial
        answer: the page not read could hold the finding that escalates, and unknown must not read as "no".
        Raises ``FhirServerError``.
        """
        deadline = deadline or self.deadline()
        what = _describe(path)
        url: str | None = _join(base, path)
        resources: list[dict[str, Any]] = []
        for page in range(1, self._max_pages + 1):
            if url is None:
                return resources
            label = what if page == 1 else f"{what} (page {page})"
            bundle = self._get(url, token, label, deadline)
            if bundle.get("resourceType") != "Bundle":
                raise FhirServerError(f"GET {label}: expected a Bundle, got {_type_name(bundle)}")
            resources.extend(_matches(bundle, label))
            url = _next_url(bundle, url, base, label)
        if url is not None:
            raise FhirServerError(
                f"GET {what}: more than {self._max_pages} pages; not all data could be read"
            )
        return resources

    def _get(self, url: str, token: str | None, what: str, deadline: Deadline) -> dict[str, Any]:
        """One GET, retried on connection errors and 5xx while attempts and time are left."""
        for attempt in range(1, self._retries + 2):
            if deadline.left() <= 0:
                raise deadline.spent(what)
            try:
                return self._attempt(url, token, what, deadline)
            except _Retry as failed:
                # urllib3's schedule: no pause before the first retry, then backoff * 2, * 4, ...
                pause = 0.0 if attempt == 1 else self._backoff * 2 ** (attempt - 1)
                if attempt > self._retries or deadline.left() <= pause:
                    raise FhirServerError(failed.reason) from failed
                time.sleep(pause)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    def _attempt(self, url: str, token: str | None, what: str, deadline: Deadline) -> dict[str, Any]:
        """One try with our headers and timeouts; a failure is a ``_Retry`` or a ``FhirServerError``."""
        headers = {"Accept": FHIR_JSON}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connect, read = deadline.cap(self._connect_timeout), deadline.cap(self._read_timeout)
        try:
            with self._session.get(
                url, headers=headers, timeout=(connect, read), allow_redirects=False, stream=True
            ) as response:
                if response.status_code in _RETRY_STATUSES:
                    raise _Retry(_status_reason(response.status_code, what))
                _check_status(response.status_code, what)
                body = self._read_body(response, what, deadline)
        except requests.ConnectTimeout as exc:
            if deadline.left() <= 0:
                raise deadline.spent(what) from exc
            raise _Retry(f"GET {what}: could not connect within {_secs(connect)}") from exc
        except requests.ReadTimeout as exc:
            if deadline.left() <= 0:
                raise deadline.spent(what) from exc
            raise FhirServerError(f"GET {what}: timed out after {_secs(read)}") from exc
        except requests.ConnectionError as exc:
            raise _Retry(f"GET {what}: could not connect to the FHIR server") from exc
        except requests.RequestException as exc:
            raise FhirServerError(f"GET {what}: request failed ({type(exc).__name__})") from exc
        except Urllib3Error as exc:  # raised by ``raw.read1`` while the body streams in
            raise FhirServerError(f"GET {what}: the answer was cut off ({type(exc).__name__})") from exc
        return _parse(body, what)

    def _read_body(self, response: requests.Response, what: str, deadline: Deadline) -> bytes:
        """Read the body under a deadline and a size cap: the read timeout bounds each wait and their sum.

        ``read1`` returns as soon as some bytes arrive, so the deadline is checked after every socket read
        rather than after a 64 KiB chunk that a trickling server could take hours to fill; before each read
        the socket's timeout is cut to the time left, so the read in flight cannot outlast the deadline.
        """
        until = min(time.monotonic() + self._read_timeout, deadline.at)
        sock = _socket_of(response)
        chunks: list[bytes] = []
        size = 0
        while True:
            left = until - time.monotonic()
            if left > 0 and sock is not None:
                sock.settimeout(max(0.001, left))
            try:
                chunk = response.raw.read1(_CHUNK, decode_content=True) if left > 0 else None
            except (ReadTimeoutError, TimeoutError):
                chunk = None  # the socket read was cut at ``until``
            if chunk is None:
                if deadline.left() <= 0:
                    raise deadline.spent(what)
                raise FhirServerError(
                    f"GET {what}: the answer took over {_secs(self._read_timeout)} to arrive"
                )
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self._max_body_bytes:
                raise FhirServerError(f"GET {what}: the answer is over {self._max_body_bytes} bytes")
            chunks.append(chunk)


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket the body arrives on (urllib3 2: ``HTTPResponse.connection.sock``), if it can be found."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _status_reason(status: int, what: str) -> str:
    reason = _STATUS_REASONS.get(status)
    if reason is None:
        if 300 <= status < 400:
            reason = "the FHIR server redirected the request (not followed)"
        elif status < 500:
            reason = "the FHIR server rejected the request"
        else:
            reason = "the FHIR server failed"
    return f"GET {what}: {reason} ({status})"


def _check_status(status: int, what: str) -> None:
    if status in (401, 403):
        raise TokenRefusedByServer(_status_reason(status, what))
    if not 200 <= status < 300:
        raise FhirServerError(_status_reason(status, what))


def _parse(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FhirServerError(f"GET {what}: the answer is not JSON") from exc
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise FhirServerError(f"GET {what}: the answer is not a FHIR resource")
    return value


def _matches(bundle: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """The ``entry[].resource`` of a search Bundle that are results (FHIR R4 §3.1.1.6 search.mode)."""
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FhirServerError(f"GET {what}: Bundle.entry is not a list")
    found: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise FhirServerError(f"GET {what}: a Bundle entry is not an object")
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, dict) else None
        resource = entry.get("resource")
        if mode in (None, "match") and isinstance(resource, dict):
            found.append(resource)
    return found


def _next_url(bundle: dict[str, Any], current: str, base: str, what: str) -> str | None:
    """The ``next`` link if it stays on ``base``'s origin; anything else ends the search.

    The token is a bearer token: whoever receives it can use it, so it goes nowhere but ``base``.
    """
    links = bundle.get("link", [])
    if not isinstance(links, list):
        return None
    for link in links:
        href = link.get("url") if isinstance(link, dict) else None
        if isinstance(href, str) and link.get("relation") == "next":
            url = urljoin(current, href)
            if _origin(url) == _origin(base):
                return url
            raise FhirServerError(f"GET {what}: the next page is on another server; not followed")
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number: an origin nothing else can equal
        return (scheme, "", -1)
    return (scheme, (parts.hostname or "").lower(), port)


def _join(base: str, path: str) -> str:
    return f"{base.rstrip('/')}/{path.lstrip('/')}"


def _resource_type_of(path: str) -> str | None:
    """``Patient`` for ``Patient/123``; None for paths that do not name a type (``metadata``)."""
    first = path.lstrip("/").split("?", 1)[0].split("/", 1)[0]
    return first if re.fullmatch(r"[A-Z][A-Za-z]+", first) else None


def _describe(path: str) -> str:
    """The path as it may appear in an error: ids become ``{id}`` and query values are dropped.

    ``Patient/123`` → ``Patient/{id}``, ``Observation?patient=123&code=x`` → ``Observation?patient&code``:
    enough to tell which call failed, with no patient identifier in a message or a log line.
    """
    route, _, query = path.lstrip("/").partition("?")
    segments = [
        s if re.fullmatch(r"[A-Z][A-Za-z]+|\$[a-z-]+|_history|metadata", s) else "{id}"
        for s in route.split("/")
    ]
    names = [p.split("=", 1)[0] for p in query.split("&") if p]
    return "/".join(segments) + ("?" + "&".join(names) if names else "")


def _type_name(resource: dict[str, Any]) -> str:
    value = resource.get("resourceType")
    return value if isinstance(value, str) and re.fullmatch(r"[A-Za-z]{1,64}", value) else "something else"


def _secs(seconds: float) -> str:
    return f"{seconds:g} s"
