"""The FHIR client against a real HTTP server on 127.0.0.1: what it returns, refuses and how long it waits."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service.errors import PrefetchUnavailable
from service.reader.client import Deadline, FhirClient, FhirServerError, build_session

TOKEN = "t0k"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FHIR = "application/fhir+json"


@pytest.fixture()
def fhir(httpserver_ipv4: HTTPServer) -> HTTPServer:
    """The EHR's FHIR server, listening on 127.0.0.1 (never a name that could resolve elsewhere)."""
    return httpserver_ipv4


@pytest.fixture()
def threaded_fhir() -> Iterator[HTTPServer]:
    """A FHIR server that answers each connection in its own thread, so a retry reaches a handler at once."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture()
def base(fhir: HTTPServer) -> str:
    return fhir.url_for("/fhir")


@pytest.fixture()
def client() -> Iterator[FhirClient]:
    session = build_session()
    yield FhirClient(session, connect_timeout=1.0, read_timeout=1.0, retries=2, backoff=0.01)
    session.close()


def observation(n: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"o{n}", "status": "final"}


def searchset(*entries: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": list(entries)}
    if next_url is not None:
        bundle["link"] = [{"relation": "self", "url": "ignored"}, {"relation": "next", "url": next_url}]
    return bundle


def match(n: int) -> dict[str, Any]:
    return {"resource": observation(n), "search": {"mode": "match"}}


def paged(fhir: HTTPServer, pages: int) -> None:
    """Serve ``pages`` search pages of one Observation each, chained by absolute ``next`` links."""
    for n in range(1, pages + 1):
        next_url = fhir.url_for(f"/fhir/page{n + 1}") if n < pages else None
        path = "/fhir/Observation" if n == 1 else f"/fhir/page{n}"
        fhir.expect_request(path, headers=BEARER).respond_with_json(
            searchset(match(n), next_url=next_url), content_type=FHIR
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_read_returns_the_resource_sending_the_token_and_asking_for_fhir_json(
    fhir: HTTPServer, base: str, client: FhirClient
) -> None:
    patient = {"resourceType": "Patient", "id": "p1"}
    fhir.expect_request("/fhir/Patient/p1", headers={**BEARER, "Accept": FHIR}).respond_with_json(
        patient, content_type=FHIR
    )

    assert client.read(base + "/", "Patient/p1", TOKEN) == patient


def test_without_a_token_no_authorization_header_is_sent(
    fhir: HTTPServer, base: str, client: FhirClient
) -> None:
    fhir.expect_request("/fhir/metadata").respond_with_json({"resourceType": "CapabilityStatement"})

    assert client.read(base, "metadata", None)["resourceType"] == "CapabilityStatement"
    assert "Authorization" not in fhir.log[0][0].headers


def test_search_follows_next_links_across_three_pages(
    fhir: HTTPServer, base: str, client: FhirClient
) -> None:
    paged(fhir, 3)

    found = client.search(base, "Observation?patient=p1&code=x", TOKEN)

    assert [r["id"] for r in found] == ["o1", "o2", "o3"]
    assert len(fhir.log) == 3


def test_search_with_more_pages_than_the_limit_is_an_error_not_a_partial_answer(
    fhir: HTTPServer, base: str
) -> None:
    paged(fhir, 4)
    client = FhirClient(build_session(), backoff=0.01, max_pages=2)

    with pytest.raises(FhirServerError, match="more than 2 pages"):
        client.search(base, "Observation", TOKEN)
    assert len(fhir.log) == 2


def test_search_within_the_page_limit_returns_every_page(fhir: HTTPServer, base: str) -> None:
    paged(fhir, 2)
    client = FhirClient(build_session(), backoff=0.01, max_pages=2)

    assert [r["id"] for r in client.search(base, "Observation", TOKEN)] == ["o1", "o2"]


def test_search_returns_only_matches_not_includes_or_outcomes(
    fhir: HTTPServer, base: str, client: FhirClient
) -> None:
    fhir.expect_request("/fhir/Observation").respond_with_json(
        searchset(
            match(1),
            {"resource": observation(2)},  # no search.mode: a match
            {"resource": {"resourceType": "Patient", "id": "p1"}, "search": {"mode": "include"}},
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}},
        )
    )

    assert [r["id"] for r in client.search(base, "Observation?_include=Observation:subject", TOKEN)] == [
        "o1",
        "o2",
    ]


@pytest.mark.parametrize(
    "elsewhere",
    [
        "http://evil.example/fhir/page2",  # another host
        "http://localhost:{port}/fhir/page2",  # another host name for the same machine
        "http://127.0.0.1:{other}/fhir/page2",  # another port
        "https://127.0.0.1:{port}/fhir/page2",  # another scheme
    ],
)
def test_a_next_link_off_the_servers_origin_is_not_followed(
    fhir: HTTPServer, base: str, client: FhirClient, elsewhere: str
) -> None:
    next_url = elsewhere.format(port=fhir.port, other=free_port())
    fhir.expect_request("/fhir/Observation").respond_with_json(searchset(match(1), next_url=next_url))
    fhir.expect_request("/fhir/page2").respond_with_json(searchset(match(2)))

    with pytest.raises(FhirServerError, match="another server"):
        client.search(base, "Observation", TOKEN)
    assert len(fhir.log) == 1


def test_a_5xx_is_retried_until_it_succeeds(fhir: HTTPServer, base: str, client: FhirClient) -> None:
    fhir.expect_ordered_request("/fhir/Patient/p1").respond_with_data("down", status=500)
    fhir.expect_ordered_request("/fhir/Patient/p1").respond_with_data("down", status=503)
    fhir.expect_ordered_request("/fhir/Patient/p1").respond_with_json({"resourceType": "Patient"})

    assert client.read(base, "Patient/p1", TOKEN) == {"resourceType": "Patient"}
    assert len(fhir.log) == 3


def test_a_5xx_that_persists_is_an_error_after_the_retries(
    fhir: HTTPServer, base: str, client: FhirClient
) -> None:
    fhir.expect_request("/fhir/Patient/p1").respond_with_data("down", status=500)

    with pytest.raises(FhirServerError, match=r"GET Patient/\{id\}: the FHIR server failed \(500\)"):
        client.read(base, "Patient/p1", TOKEN)
    assert len(fhir.log) == 3  # the first try and two retries


def test_a_404_is_an_error_and_not_retried(fhir: HTTPServer, base: str, client: FhirClient) -> None:
    fhir.expect_request("/fhir/Patient/p-123").respond_with_data("no", status=404)

    with pytest.raises(FhirServerError, match=r"no such resource \(404\)") as raised:
        client.read(base, "Patient/p-123", TOKEN)
    assert "p-123" not in str(raised.value)  # no patient identifier in a message
    assert len(fhir.log) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_an_error_that_says_so_without_the_token(
    fhir: HTTPServer, base: str, client: FhirClient, status: int
) -> None:
    fhir.expect_request("/fhir/Observation").respond_with_data("", status=status)

    with pytest.raises(FhirServerError, match=rf"refused the access token \({status}\)") as raised:
        client.search(base, "Observation?patient=p1", TOKEN)
    assert TOKEN not in str(raised.value)
    assert "p1" not in str(raised.value)
    assert len(fhir.log) == 1


def test_a_server_that_does_not_answer_costs_one_read_timeout(threaded_fhir: HTTPServer) -> None:
    release = threading.Event()
    calls: list[str] = []

    def slow(request: Request) -> Response:
        calls.append(request.path)
        release.wait(2)
        return Response('{"resourceType": "Patient"}', content_type=FHIR)

    threaded_fhir.expect_request("/fhir/Patient/p1").respond_with_handler(slow)
    client = FhirClient(build_session(), read_timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(FhirServerError, match=r"timed out after 0.5 s"):
            client.read(threaded_fhir.url_for("/fhir"), "Patient/p1", TOKEN)
        elapsed = time.monotonic() - started
    finally:
        release.set()

    assert elapsed < 3  # a bound on behaviour, not a benchmark
    assert calls == ["/fhir/Patient/p1"]  # the read timeout was not retried


@pytest.mark.parametrize(
    ("read_timeout", "budget", "reason"),
    [
        (0.5, 2.0, r"took over 0.5 s"),  # the read timeout bounds the whole body
        (5.0, 0.5, r"the 0.5 s time budget of the hook call ran out"),  # and so does the hook's deadline
    ],
)
def test_a_body_trickled_byte_by_byte_is_cut_off_at_the_deadline(
    threaded_fhir: HTTPServer, read_timeout: float, budget: float, reason: str
) -> None:
    release = threading.Event()

    def trickle(request: Request) -> Response:
        def drip() -> Iterator[bytes]:
            yield b'{"resourceType": "Patient", "text": "'
            while not release.wait(0.1):  # each byte well inside the read timeout
                yield b"x"

        return Response(drip(), content_type=FHIR)

    threaded_fhir.expect_request("/fhir/Patient/p1").respond_with_handler(trickle)
    client = FhirClient(build_session(), read_timeout=read_timeout, budget=budget)
    started = time.monotonic()
    try:
        with pytest.raises(FhirServerError, match=reason):
            client.read(threaded_fhir.url_for("/fhir"), "Patient/p1", TOKEN)
        elapsed = time.monotonic() - started
    finally:
        release.set()

    assert elapsed < 3


def test_retry_after_is_ignored_so_the_server_cannot_stretch_the_wait(
    fhir: HTTPServer, base: str, client: FhirClient
) -> None:
    fhir.expect_ordered_request("/fhir/Patient/p1").respond_with_data(
        "busy", status=503, headers={"Retry-After": "30"}
    )
    fhir.expect_ordered_request("/fhir/Patient/p1").respond_with_json({"resourceType": "Patient"})
    started = time.monotonic()

    assert client.read(base, "Patient/p1", TOKEN) == {"resourceType": "Patient"}
    assert time.monotonic() - started < 3


def test_a_port_nobody_listens_on_is_an_error_quickly(client: FhirClient) -> None:
    started = time.monotonic()

    with pytest.raises(FhirServerError, match="could not connect"):
        client.read(f"http://127.0.0.1:{free_port()}/fhir", "Patient/p1", TOKEN)

    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        ("<html><body>Sign in</body></html>", "text/html", "not JSON"),
        ("[]", FHIR, "not a FHIR resource"),
        ('{"resourceType": "OperationOutcome"}', FHIR, "expected a Bundle, got OperationOutcome"),
    ],
)
def test_a_search_answer_that_is_not_a_bundle_is_an_error(
    fhir: HTTPServer, base: str, client: FhirClient, body: str, content_type: str, reason: str
) -> None:
    fhir.expect_request("/fhir/Observation").respond_with_data(body, content_type=content_type)

    with pytest.raises(FhirServerError, match=reason):
        client.search(base, "Observation", TOKEN)


def test_a_read_answered_with_another_resource_type_is_an_error(
    fhir: HTTPServer, base: str, client: FhirClient
) -> None:
    fhir.expect_request("/fhir/Patient/p1").respond_with_json({"resourceType": "OperationOutcome"})

    with pytest.raises(FhirServerError, match="expected a Patient, got OperationOutcome"):
        client.read(base, "Patient/p1", TOKEN)


def test_a_redirect_is_not_followed(fhir: HTTPServer, base: str, client: FhirClient) -> None:
    fhir.expect_request("/fhir/Patient/p1").respond_with_data(
        "", status=302, headers={"Location": "http://evil.example/fhir/Patient/p1"}
    )

    with pytest.raises(FhirServerError, match=r"redirected .*\(302\)"):
        client.read(base, "Patient/p1", TOKEN)


def test_a_body_over_the_cap_is_an_error(fhir: HTTPServer, base: str) -> None:
    fhir.expect_request("/fhir/Patient/p1").respond_with_json({"resourceType": "Patient", "text": "x" * 5000})
    client = FhirClient(build_session(), max_body_bytes=1000)

    with pytest.raises(FhirServerError, match="over 1000 bytes"):
        client.read(base, "Patient/p1", TOKEN)


def test_the_error_is_answered_as_prefetch_unavailable() -> None:
    """CDS Hooks 2.0.1: a service that cannot get its FHIR data answers 412."""
    error = FhirServerError("GET Patient/{id}: timed out after 5 s")
    assert isinstance(error, PrefetchUnavailable)
    assert (error.status, error.issue_code, error.reason) == (412, "incomplete", str(error))


def test_pages_stop_when_the_hook_calls_deadline_has_passed(threaded_fhir: HTTPServer) -> None:
    """Five slow pages, each well inside the read timeout: the deadline ends the search, not the pages."""
    for n in range(1, 6):

        def page(request: Request, n: int = n) -> Response:
            time.sleep(0.3)
            next_url = threaded_fhir.url_for(f"/fhir/page{n + 1}") if n < 5 else None
            return Response(json.dumps(searchset(match(n), next_url=next_url)), content_type=FHIR)

        threaded_fhir.expect_request(
            "/fhir/Observation" if n == 1 else f"/fhir/page{n}"
        ).respond_with_handler(page)
    client = FhirClient(build_session(), read_timeout=5.0, budget=0.75)
    started = time.monotonic()

    with pytest.raises(FhirServerError, match=r"the 0.75 s time budget of the hook call ran out"):
        client.search(threaded_fhir.url_for("/fhir"), "Observation", TOKEN)

    assert time.monotonic() - started < 0.75 + 1.5  # a bound on behaviour, not a benchmark
    assert len(threaded_fhir.log) < 5


def test_retries_stop_when_the_deadline_has_passed(fhir: HTTPServer, base: str) -> None:
    fhir.expect_request("/fhir/Patient/p1").respond_with_data("down", status=503)
    client = FhirClient(build_session(), retries=5, backoff=0.2)
    started = time.monotonic()

    with pytest.raises(FhirServerError, match=r"the FHIR server failed \(503\)"):
        client.read(base, "Patient/p1", TOKEN, Deadline.after(1.0))

    # a try, a retry at once, one after 0.4 s; the next pause (0.8 s) would end past the deadline: not made.
    # (1 s, not less: a loaded machine may take a few tenths for the first two tries)
    assert len(fhir.log) == 3
    assert time.monotonic() - started < 1.0 + 1.5


def test_a_read_timeout_longer_than_the_time_left_is_cut_at_the_deadline(threaded_fhir: HTTPServer) -> None:
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(5)
        return Response('{"resourceType": "Patient"}', content_type=FHIR)

    threaded_fhir.expect_request("/fhir/Patient/p1").respond_with_handler(slow)
    client = FhirClient(build_session(), read_timeout=4.0)
    deadline = Deadline.after(0.5)
    try:
        with pytest.raises(FhirServerError, match=r"the 0.5 s time budget of the hook call ran out"):
            client.read(threaded_fhir.url_for("/fhir"), "Patient/p1", TOKEN, deadline)
        late = -deadline.left()
        # a later read of the same hook call is not even sent
        with pytest.raises(FhirServerError, match="time budget"):
            client.read(threaded_fhir.url_for("/fhir"), "Patient/p1", TOKEN, deadline)
    finally:
        release.set()

    assert 0 <= late < 1.5
    assert len(threaded_fhir.log) <= 1
