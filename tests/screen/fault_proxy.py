"""A small HTTP proxy in front of the real FHIR server, for the faults a real server does not make on cue.

The export tests talk to SEKMET (tests/fhir_server.py) through this proxy: SEKMET is started with the
proxy's address as its base URL, so its manifests and status URLs lead back here. By default every
request is passed on as is and the answer returned as is; the server still does the export. A test adds
``rules``: each sees a request first and may answer it itself (a 429 with Retry-After, a status held at
202), pass it on changed, or pass the answer back changed (a body cut short, a token lifetime misstated).
``ranges`` makes it serve byte ranges of what the server sends whole, as a caching reverse proxy does.
Every exchange is recorded in ``seen``, with the time it was answered.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
    "date",
    "server",
}


@dataclass
class Exchange:
    """One request as it reached the proxy, and the answer it got (set once answered)."""

    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int = 0
    at: float = 0.0  # time.monotonic() when answered
    answer_headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Reply:
    """What goes back to the client; ``cut_after`` stops the body after that many bytes (and closes)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    cut_after: int | None = None


Forward = Callable[[Exchange], Reply]
Rule = Callable[[Exchange, Forward], Reply | None]


class FaultProxy:
    def __init__(self, port: int, upstream: int):
        self.port, self.upstream = port, upstream
        self.rules: list[Rule] = []
        self.ranges = False
        self.seen: list[Exchange] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.handle(self)

            do_POST = do_DELETE = do_PUT = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def reset(self) -> None:
        with self.lock:
            self.rules, self.ranges, self.seen = [], False, []

    def exchanges(self, method: str, path: str) -> list[Exchange]:
        """What was seen of ``method`` on paths matching the regular expression ``path``."""
        with self.lock:
            return [e for e in self.seen if e.method == method and re.search(path, e.path)]

    def forward(self, exchange: Exchange) -> Reply:
        """The real server's answer to the request (with its query and body as they are now)."""
        headers = {k: v for k, v in exchange.headers.items() if k not in HOP and k != "range"}
        query = [(k, v) for k, values in exchange.query.items() for v in values]
        answer = requests.request(
            exchange.method,
            f"http://127.0.0.1:{self.upstream}{exchange.path}",
            params=query,
            headers={**headers, "accept-encoding": "identity"},
            data=exchange.body or None,
            timeout=60,
            allow_redirects=False,
        )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP}
        return Reply(answer.status_code, kept, answer.content)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        size = int(handler.headers.get("Content-Length") or 0)
        exchange = Exchange(
            handler.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in handler.headers.items()},
            handler.rfile.read(size) if size else b"",
        )
        with self.lock:
            rules = list(self.rules)
        reply = None
        for rule in rules:
            reply = rule(exchange, self.forward)
            if reply is not None:
                break
        if reply is None:
            reply = self.forward(exchange)
        if self.ranges and exchange.method == "GET" and "/bulk-files/" in exchange.path:
            reply = _ranged(reply, exchange.header("range"))
        exchange.status, exchange.at, exchange.answer_headers = reply.status, time.monotonic(), reply.headers
        with self.lock:
            self.seen.append(exchange)
        _send(handler, reply)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _ranged(reply: Reply, asked: str | None) -> Reply:
    """RFC 9110 §14: ``bytes=N-`` of a whole 200 answer as 206, and Accept-Ranges on every answer."""
    if reply.status != 200:
        return reply
    headers = {**reply.headers, "Accept-Ranges": "bytes"}
    found = re.fullmatch(r"bytes=(\d+)-", asked or "")
    if found is None:
        return Reply(200, headers, reply.body, reply.cut_after)
    start, total = int(found.group(1)), len(reply.body)
    if start >= total:
        return Reply(416, {"Content-Range": f"bytes */{total}"})
    headers["Content-Range"] = f"bytes {start}-{total - 1}/{total}"
    return Reply(206, headers, reply.body[start:], reply.cut_after)


def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    handler.send_response(reply.status)
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(reply.body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    body = reply.body if reply.cut_after is None else reply.body[: reply.cut_after]
    try:
        handler.wfile.write(body)
        handler.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        pass
    if reply.cut_after is not None:
        handler.close_connection = True


@contextmanager
def proxying(port: int, upstream: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(port, upstream)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
