"""The polite HTTP client: retries with backoff and Retry-After, status errors, size cap, host spacing, secrets.

Also home of the helpers the source tests share: a scripted httpx MockTransport and a local
http.server on 127.0.0.1 (for real slow responses).
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from finsentinel.errors import SourceError
from finsentinel.settings import HttpSettings
from ingest.sources.http import HostLimiter, HttpClient, HttpStatusError, redact, retry_after

DATA = Path(__file__).parent / "data" / "ingest"
Handler = Callable[[httpx.Request], httpx.Response]


def payload(name: str) -> bytes:
    """A recorded payload from tests/data/ingest."""
    return (DATA / name).read_bytes()


class Script:
    """An httpx MockTransport that answers requests from a queue (or a router) and records them."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def fast(**kw: object) -> HttpSettings:
    """HTTP settings with no waiting, for tests."""
    return HttpSettings.model_validate({"host_interval_s": 0, "backoff_s": 0.01, "max_backoff_s": 5, **kw})


class _Slow(http.server.BaseHTTPRequestHandler):
    delay = 1.0

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        time.sleep(self.delay)
        body = payload("en_rss.xml")
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    """A local server that answers every GET after one second."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    server.shutdown()
    server.server_close()


def test_retries_5xx_then_succeeds() -> None:
    script = Script(httpx.Response(503), httpx.Response(502), httpx.Response(200, content=b"ok"))
    client = HttpClient(fast(), script.transport)
    response = client.get("https://feeds.example/a", source="s")
    assert (response.status, response.content, len(script.requests)) == (200, b"ok", 3)


def test_retry_after_seconds_is_honoured() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, content=b"ok"))
    client = HttpClient(fast(), script.transport)
    started = time.monotonic()
    assert client.get("https://api.example/x", source="s").status == 200
    assert time.monotonic() - started >= 0.95


def test_retry_after_beyond_the_limit_fails_at_once() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "3600"}))
    client = HttpClient(fast(max_backoff_s=60), script.transport)
    with pytest.raises(HttpStatusError, match="retry after 3600s") as exc:
        client.get("https://api.example/x", source="s")
    assert exc.value.status == 429 and len(script.requests) == 1


def test_retries_run_out() -> None:
    script = Script(httpx.Response(500, content=b"boom"))
    client = HttpClient(fast(max_retries=2), script.transport)
    with pytest.raises(HttpStatusError, match="failed after 3 attempts") as exc:
        client.get("https://api.example/x", source="s")
    assert exc.value.status == 500 and len(script.requests) == 3


def test_client_errors_are_not_retried_and_name_the_status() -> None:
    script = Script(httpx.Response(401, json={"status": "error", "code": "apiKeyInvalid"}))
    client = HttpClient(fast(), script.transport)
    with pytest.raises(HttpStatusError, match="answered 401 \\(check the API key\\).*apiKeyInvalid"):
        client.get("https://api.example/x", source="s")
    assert len(script.requests) == 1


def test_network_errors_are_retried() -> None:
    request = httpx.Request("GET", "https://api.example/x")
    script = Script(httpx.ConnectError("refused", request=request), httpx.Response(200, content=b"ok"))
    assert HttpClient(fast(), script.transport).get("https://api.example/x", source="s").status == 200
    script = Script(httpx.ReadTimeout("slow", request=request))
    with pytest.raises(SourceError, match="failed after 2 attempts \\(ReadTimeout"):
        HttpClient(fast(max_retries=1), script.transport).get("https://api.example/x", source="s")


def test_corrupt_bodies_redirect_loops_and_bad_urls_fail_the_fetch_at_once() -> None:
    # Not httpx.TransportError: once they escaped as crashes with a traceback.
    script = Script(httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")))
    with pytest.raises(SourceError, match=r"GET https://api.example/x sent a body that cannot be decoded "
                                          r"\(DecodingError: .*curl --compressed"):
        HttpClient(fast(), script.transport).get("https://api.example/x", source="s")
    assert len(script.requests) == 1

    loop = Script(lambda request: httpx.Response(302, headers={"Location": str(request.url)}))
    with pytest.raises(SourceError, match=r"GET https://api.example/x redirected too many times "
                                          r"\(TooManyRedirects: .*redirect loop"):
        HttpClient(fast(), loop.transport).get("https://api.example/x", source="s")
    assert len(loop.requests) == 21

    for url in ("https://a.example:b:c/x", "https://a.example/x\n", "http://[broken/x"):
        with pytest.raises(SourceError, match=r"is not a valid URL \((InvalidURL|ValueError): .*check the source's url"):
            HttpClient(fast(), Script(httpx.Response(200)).transport).get(url, source="s")
    with pytest.raises(SourceError) as exc:
        HttpClient(fast(), Script(httpx.Response(200)).transport).get("https://a.example:SECRET-1/x", source="s",
                                                                      secrets=["SECRET-1"])
    assert "SECRET-1" not in str(exc.value)


def test_a_slow_server_times_out(slow_server: str) -> None:
    client = HttpClient(fast(max_retries=0))
    started = time.monotonic()
    with pytest.raises(SourceError, match="ReadTimeout"):
        client.get(slow_server, source="slow", timeout_s=0.2)
    assert time.monotonic() - started < 1.0
    assert client.get(slow_server, source="slow", timeout_s=5).content == payload("en_rss.xml")
    client.close()


def test_large_responses_are_refused() -> None:
    script = Script(httpx.Response(200, content=b"x" * 5000))
    with pytest.raises(SourceError, match="larger than ingest.http.max_bytes"):
        HttpClient(fast(max_bytes=4096), script.transport).get("https://api.example/x", source="s")


def test_secrets_never_appear_in_errors() -> None:
    script = Script(httpx.Response(403, content=b"bad token SECRET-123"))
    with pytest.raises(HttpStatusError) as exc:
        HttpClient(fast(), script.transport).get("https://api.example/x?token=SECRET-123", source="s",
                                                 secrets=["SECRET-123"])
    assert "SECRET-123" not in str(exc.value) and "***" in str(exc.value)
    assert redact("a=k1&b=k1", ["k1", ""]) == "a=***&b=***"


def test_user_agent_and_stop_during_backoff() -> None:
    script = Script(httpx.Response(503, headers={"Retry-After": "30"}))
    client = HttpClient(fast(max_backoff_s=60), script.transport)
    threading.Timer(0.2, client.stop.set).start()
    started = time.monotonic()
    with pytest.raises(SourceError, match="stopped while waiting"):
        client.get("https://api.example/x", source="s")
    assert time.monotonic() - started < 5
    assert script.requests[0].headers["user-agent"].startswith("FinSentinel/")


def test_host_limiter_spaces_requests_per_host() -> None:
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = HostLimiter(2.0, sleep, clock=lambda: now[0])
    assert limiter.wait("a.example") == 0
    assert limiter.wait("a.example") == 2.0  # queued behind the first
    assert limiter.wait("b.example") == 0  # another host is independent
    now[0] += 10
    assert limiter.wait("a.example") == 0
    # A request's own spacing sets how long the next one to the host waits.
    assert limiter.wait("a.example", interval_s=0.5) == 2.0
    assert limiter.wait("a.example") == 0.5 and waits == [2.0, 2.0, 0.5]


def test_retry_after_parsing() -> None:
    now = datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert retry_after("120") == 120.0
    assert retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert retry_after(None) is None and retry_after("soon") is None
