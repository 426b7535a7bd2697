"""Polite HTTP GET for sources: per-host spacing, retries with backoff honouring Retry-After, size cap.

One :class:`HttpClient` is shared by every HTTP source of a worker, so the per-host spacing holds
across sources that share a host. It wraps ``httpx`` (the transport is injectable: tests use
``httpx.MockTransport`` or a local server). 429 and 5xx answers and network errors (timeouts
included) are retried up to ``max_retries`` times after ``backoff_s * 2**attempt`` seconds (with
jitter) or the server's ``Retry-After``; a Retry-After beyond ``max_backoff_s`` fails the fetch at
once, leaving the wait to the schedule and the circuit breaker, as do a body that cannot be decoded,
a redirect loop and an invalid URL (asking again gets the same answer). Secrets never appear in messages.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from finsentinel.errors import SourceError
from finsentinel.settings import HttpSettings
from ingest import metrics

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HttpStatusError(SourceError):
    """The server answered with a status that is neither success nor worth retrying (or retries ran out)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Response:
    """A finished response: status, headers (case-insensitive), the body and the final URL."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str


class HostLimiter:
    """At most one request per ``interval_s`` to each host, across threads (requests queue for their slot)."""

    def __init__(self, interval_s: float, sleep: Callable[[float], object],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s, self._sleep, self._clock = interval_s, sleep, clock
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, host: str, interval_s: float | None = None) -> float:
        """Block until ``host`` may be asked again; returns the seconds waited."""
        spacing = self.interval_s if interval_s is None else interval_s
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + spacing
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return delay


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _unretryable(exc: Exception, source: str, shown: str, secrets: Sequence[str]) -> str:
    """The message of a request that cannot succeed as it is: what was asked, what happened, the fix."""
    what = f"{type(exc).__name__}: {redact(str(exc), secrets)}"
    if isinstance(exc, httpx.DecodingError):
        return (f"source {source}: GET {shown} sent a body that cannot be decoded ({what}); expected a body "
                "in the Content-Encoding it declares; the server sends a corrupt or mislabelled (gzip, "
                "deflate, br) body: check the URL with curl --compressed, or ask its owner")
    if isinstance(exc, httpx.TooManyRedirects):
        return (f"source {source}: GET {shown} redirected too many times ({what}); expected an answer after "
                "at most 20 redirects; a redirect loop (often a login or cookie wall): check the URL in a browser")
    return (f"source {source}: {shown!r} is not a valid URL ({what}); expected an http(s) URL: check the "
            "source's url and params (or, for an article page, the link of the feed entry)")


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class HttpClient:
    """Shared, polite HTTP client of the ingest worker (no I/O until the first request)."""

    def __init__(self, settings: HttpSettings, transport: httpx.BaseTransport | None = None,
                 stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self.limiter = HostLimiter(settings.host_interval_s, self.stop.wait)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(transport=self._transport, follow_redirects=True,
                                            headers={"User-Agent": self.settings.user_agent})
            return self._client

    def get(self, url: str, *, source: str, params: Mapping[str, Any] | None = None,
            headers: Mapping[str, str] | None = None, timeout_s: float = 20.0, secrets: Sequence[str] = (),
            host_interval_s: float | None = None) -> Response:
        """GET ``url``: a 2xx or 304 :class:`Response`, or :class:`SourceError` after the retries."""
        shown = redact(url, secrets)
        try:
            host = urlsplit(url).netloc.lower()
        except ValueError as exc:  # "http://[broken": a URL from a feed entry or a filled-in template
            raise SourceError(_unretryable(exc, source, shown, secrets)) from exc
        attempt = 0
        while True:
            self.limiter.wait(host, host_interval_s)
            try:
                response = self._send(url, params, headers, timeout_s, source, secrets)
            except httpx.TransportError as exc:
                problem, delay, status = f"{type(exc).__name__}: {redact(str(exc), secrets)}", None, None
            except (httpx.DecodingError, httpx.TooManyRedirects, httpx.InvalidURL) as exc:
                # Not transport errors, and asking again gets the same answer: the fetch fails now.
                raise SourceError(_unretryable(exc, source, shown, secrets)) from exc
            else:
                if response.status not in RETRY_STATUSES:
                    return self._check(response, source, shown, secrets)
                problem, status = f"HTTP {response.status}", response.status
                delay = retry_after(response.headers.get("retry-after"))
                if delay is not None and delay > self.settings.max_backoff_s:
                    raise HttpStatusError(
                        f"source {source}: GET {shown} answered {response.status} asking to retry after "
                        f"{delay:.0f}s, longer than ingest.http.max_backoff_s ({self.settings.max_backoff_s:.0f}s); "
                        "the source runs again at its next scheduled time", response.status)
            if attempt >= self.settings.max_retries:
                message = (f"source {source}: GET {shown} failed after {attempt + 1} attempts ({problem}); "
                           "expected a 2xx answer")
                raise HttpStatusError(message, status) if status else SourceError(message)
            wait = delay if delay is not None else self._backoff(attempt)
            log.info("source %s: %s from %s; retry %d in %.1fs", source, problem, host, attempt + 1, wait)
            metrics.HTTP_RETRIES.labels(source).inc()
            if self.stop.wait(wait):
                raise SourceError(f"source {source}: stopped while waiting to retry {shown}")
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.backoff_s * 2 ** attempt, self.settings.max_backoff_s)
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security

    def _send(self, url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None,
              timeout_s: float, source: str, secrets: Sequence[str]) -> Response:
        limit = self.settings.max_bytes
        with self._http().stream("GET", url, params=params, headers=headers, timeout=timeout_s) as raw:
            chunks: list[bytes] = []
            size = 0
            for chunk in raw.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise SourceError(f"source {source}: response from {redact(str(raw.url), secrets)} is larger "
                                      f"than ingest.http.max_bytes ({limit} bytes); refusing it")
                chunks.append(chunk)
            return Response(raw.status_code, raw.headers, b"".join(chunks), str(raw.url))

    @staticmethod
    def _check(response: Response, source: str, shown: str, secrets: Sequence[str]) -> Response:
        if 200 <= response.status < 300 or response.status == 304:
            return response
        excerpt = redact(" ".join(response.content[:300].decode("utf-8", "replace").split()), secrets)
        hint = " (check the API key)" if response.status in (401, 403) else ""
        raise HttpStatusError(f"source {source}: GET {shown} answered {response.status}{hint}: {excerpt!r}; "
                              "expected a 2xx answer", response.status)

    def close(self) -> None:
        """Close connections; the next request opens new ones."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
