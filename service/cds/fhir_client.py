"""Read from the EHR's FHIR server when prefetch is missing (CDS Hooks 2.0.1 §FHIR Resource Access).

The EHR hands us ``fhirServer`` and ``fhirAuthorization.access_token``; this module is the only place that
talks to that server. It exists so that every way the call can go wrong (no route, no answer, a refused
token, a body that is not FHIR) becomes one ``FhirServerError`` with a short reason, translated once here
(style.md: errors from other libraries are translated at the boundary), and so that the time a hook can
spend waiting on the EHR has a bound that can be written down.

Worst-case time of one GET (one page), with ``A = retries + 1`` attempts, ``c`` = connect timeout and
``r`` = read timeout::

    A * (c + r)                      each attempt: connect, then wait for the status line
    + backoff * (2 + 4 + ... + 2**(A-2))    urllib3 sleeps 0 before the first retry, then doubles
    + 2 * r                          the body: must be complete ``r`` after the headers, and the read
                                     in flight when that deadline passes may itself wait ``r``

With the defaults (retries=2, backoff=0.2, c=2 s, r=5 s) that is 3 * 7 + 0.4 + 10 = 31.4 s for ``read``;
``search`` pays it at most ``max_pages`` times. The bound holds because read timeouts are never retried
(a server that does not answer is not asked again), ``Retry-After`` is ignored (a server could otherwise
ask us to sleep for an hour) and redirects are not followed. Outside it: DNS resolution (the system
resolver's own timeout), a host name with several addresses (``c`` per address), and a 5xx body that is
trickled byte by byte (urllib3 drains it before retrying).
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from service.errors import PrefetchUnavailable

log = logging.getLogger("neckcheck.cds.fhir_client")

FHIR_JSON = "application/fhir+json"
MAX_BODY_BYTES = 16 * 1024 * 1024  # a search page bigger than this is not one a hook should wait for
_CHUNK = 64 * 1024
_RETRY_STATUSES = (500, 502, 503, 504)
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


def build_session(retries: int = 2, backoff: float = 0.2) -> requests.Session:
    """Build the one ``requests.Session`` an app shares: bounded retries on connection errors and 5xx only.

    Only GET is retried (it is idempotent). Read timeouts are not retried (``read=False``) so a server that
    does not answer costs one read timeout, not ``retries + 1`` of them; ``Retry-After`` is ignored so the
    server cannot stretch the wait. ``raise_on_status=False`` hands the last 5xx back to the client, which
    turns it into a ``FhirServerError`` like any other status. See the module docstring for the bound.
    """
    retry = Retry(
        total=retries,
        connect=retries,
        read=False,
        status=retries,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        backoff_factor=backoff,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class FhirClient:
    """GET resources and searches from a FHIR server over a shared session, with timeouts and a page cap.

    Holds no per-request state: the base URL and the token come with each call (they come with each hook
    request), so one client serves every request of the app.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        max_pages: int = 5,
        max_body_bytes: int = MAX_BODY_BYTES,
    ):
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self._session = session
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_pages = max_pages
        self._max_body_bytes = max_body_bytes

    def read(self, base: str, path: str, token: str | None) -> dict[str, Any]:
        """GET ``{base}/{path}`` and return the resource; its ``resourceType`` must match the path's type.

        ``Patient/123`` must come back as a Patient (an OperationOutcome with status 200 is an error, not
        data). Raises ``FhirServerError``.
        """
        what = _describe(path)
        resource = self._get(_join(base, path), token, what)
        expected = _resource_type_of(path)
        if expected is not None and resource.get("resourceType") != expected:
            raise FhirServerError(f"GET {what}: expected a {expected}, got {_type_name(resource)}")
        return resource

    def search(self, base: str, path: str, token: str | None) -> list[dict[str, Any]]:
        """GET a search and return the matched resources of every page, following ``next`` links.

        Only entries whose ``search.mode`` is absent or ``match`` are returned: ``include`` entries
        (``_include``) and ``outcome`` entries (warnings) are not results. At most ``max_pages`` pages are
        fetched; a search with more, or whose ``next`` link leaves ``base``'s origin (the token is for
        ``base`` only), is an error rather than a silent partial answer: the page not read could hold the
        finding that escalates, and unknown must not read as "no".
        Raises ``FhirServerError``.
        """
        what = _describe(path)
        url: str | None = _join(base, path)
        resources: list[dict[str, Any]] = []
        for page in range(1, self._max_pages + 1):
            if url is None:
                return resources
            label = what if page == 1 else f"{what} (page {page})"
            bundle = self._get(url, token, label)
            if bundle.get("resourceType") != "Bundle":
                raise FhirServerError(f"GET {label}: expected a Bundle, got {_type_name(bundle)}")
            resources.extend(_matches(bundle, label))
            url = _next_url(bundle, url, base, label)
        if url is not None:
            raise FhirServerError(
                f"GET {what}: more than {self._max_pages} pages; not all data could be read"
            )
        return resources

    def _get(self, url: str, token: str | None, what: str) -> dict[str, Any]:
        """One GET with our headers and timeouts; every failure becomes a ``FhirServerError`` here."""
        headers = {"Accept": FHIR_JSON}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        timeout = (self._connect_timeout, self._read_timeout)
        try:
            with self._session.get(
                url, headers=headers, timeout=timeout, allow_redirects=False, stream=True
            ) as response:
                _check_status(response.status_code, what)
                body = self._read_body(response, what)
        except requests.ConnectTimeout as exc:
            raise FhirServerError(
                f"GET {what}: could not connect within {_secs(self._connect_timeout)}"
            ) from exc
        except (requests.ReadTimeout, ReadTimeoutError) as exc:  # the latter while reading the body
            raise FhirServerError(f"GET {what}: timed out after {_secs(self._read_timeout)}") from exc
        except requests.ConnectionError as exc:
            raise FhirServerError(f"GET {what}: could not connect to the FHIR server") from exc
        except requests.RequestException as exc:
            raise FhirServerError(f"GET {what}: request failed ({type(exc).__name__})") from exc
        except Urllib3Error as exc:  # raised by ``raw.read1`` while the body streams in
            raise FhirServerError(f"GET {what}: the answer was cut off ({type(exc).__name__})") from exc
        return _parse(body, what)

    def _read_body(self, response: requests.Response, what: str) -> bytes:
        """Read the body under a deadline and a size cap: the read timeout bounds each wait, not their sum.

        ``read1`` returns as soon as some bytes arrive, so the deadline is checked after every socket read
        rather than after a 64 KiB chunk that a trickling server could take hours to fill.
        """
        deadline = time.monotonic() + self._read_timeout
        chunks: list[bytes] = []
        size = 0
        while chunk := response.raw.read1(_CHUNK, decode_content=True):
            size += len(chunk)
            if size > self._max_body_bytes:
                raise FhirServerError(f"GET {what}: the answer is over {self._max_body_bytes} bytes")
            if time.monotonic() > deadline:
                raise FhirServerError(
                    f"GET {what}: the answer took over {_secs(self._read_timeout)} to arrive"
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _check_status(status: int, what: str) -> None:
    if 200 <= status < 300:
        return
    reason = _STATUS_REASONS.get(status)
    if reason is None:
        if 300 <= status < 400:
            reason = "the FHIR server redirected the request (not followed)"
        elif status < 500:
            reason = "the FHIR server rejected the request"
        else:
            reason = "the FHIR server failed"
    raise FhirServerError(f"GET {what}: {reason} ({status})")


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
