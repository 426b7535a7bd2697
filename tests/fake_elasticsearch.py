"""A scripted stand-in for an Elasticsearch node on 127.0.0.1, for unit tests of the client code.

It answers what a test tells it to (status and JSON per method and path), records every
request (method, path, query, headers, parsed body), and sends the product header the
official client checks. It is no search engine: the contract tests run against a real one.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Lower-cased names."""
    body: Any
    """Parsed JSON, a list of parsed NDJSON lines (bulk), or None."""


Reply = tuple[int, Any]
Responder = Callable[[Request], Reply]


@dataclass
class FakeElasticsearch:
    """Routes ``(METHOD, path regex)`` to responders; unrouted requests get 404."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    routes: list[tuple[str, re.Pattern[str], Responder]] = field(default_factory=list)

    def on(self, method: str, path: str, responder: Responder | Reply) -> None:
        """Answer ``method`` on paths fully matching ``path`` (newest route first)."""
        handler = responder if callable(responder) else (lambda _r, reply=responder: reply)
        self.routes.insert(0, (method, re.compile(path), handler))

    def answer(self, request: Request) -> Reply:
        self.requests.append(request)
        for method, pattern, handler in self.routes:
            if method == request.method and pattern.fullmatch(request.path):
                return handler(request)
        return 404, {"error": {"type": "index_not_found_exception", "reason": f"no such index {request.path}",
                               "root_cause": [{"type": "index_not_found_exception", "reason": "missing"}]},
                     "status": 404}

    def paths(self, method: str | None = None) -> list[str]:
        return [r.method + " " + r.path for r in self.requests if method is None or r.method == method]


def _handler(fake: FakeElasticsearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
                body = lines if "ndjson" in (self.headers.get("Content-Type") or "") else lines[0]
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Request(self.command, parts.path, parse_qs(parts.query), headers, body)
            status, reply = fake.answer(request)
            data = b"" if self.command == "HEAD" or reply is None else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

    return Handler


@contextmanager
def fake_elasticsearch() -> Iterator[FakeElasticsearch]:
    """A fake node on a free loopback port, stopped afterwards."""
    fake = FakeElasticsearch()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-es",
                              daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
