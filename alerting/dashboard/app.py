"""The built-in dashboard: a read-only FastAPI app over any index backend.

``GET /`` is one static page (no external scripts, fonts or styles: it works offline); it draws
from the JSON endpoints below, which a script can call too. The app only reads the index.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from alerting.dashboard import data
from alerting.index.base import Index
from alerting.views import alert_view, parse_time
from finsentinel.errors import ConfigError, IndexStoreError

log = logging.getLogger(__name__)

# The page's own files only; links to news sites leave no trace of the dashboard's address.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

AUTH_CHALLENGE = 'Basic realm="FinSentinel", charset="UTF-8"'
Time = Annotated[str | None, Query(description="ISO 8601 date or time, UTC unless it has an offset")]
Limit = Annotated[int, Query(ge=1, le=data.MAX_ITEMS)]


def _basic_auth_ok(header: str | None, username: str, password: str) -> bool:
    """Whether an ``Authorization: Basic ...`` header carries these credentials (compared in constant time)."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, given = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    same_user = hmac.compare_digest(user.encode(), username.encode())
    return bool(sep) and hmac.compare_digest(given.encode(), password.encode()) and same_user


def create_app(index: Index, names: Mapping[str, str], credentials: tuple[str, str] | None = None) -> FastAPI:
    """The dashboard app over ``index``; ``names`` maps company ids to the names shown.

    With ``credentials`` (user, password) every page and endpoint but ``/healthz`` needs HTTP basic auth.
    """
    # No /docs: FastAPI's docs page loads its scripts from a CDN, which the policy below (and offline
    # use) forbids; the OpenAPI description itself is served.
    app = FastAPI(title="FinSentinel dashboard", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.mount("/static", StaticFiles(packages=[("alerting.dashboard", "static")]), name="static")

    @app.middleware("http")
    async def _auth_and_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if credentials is not None and request.url.path != "/healthz" and not _basic_auth_ok(
                request.headers.get("authorization"), *credentials):
            response: Response = JSONResponse({"detail": "this dashboard needs a user name and password"},
                                              status_code=401, headers={"WWW-Authenticate": AUTH_CHALLENGE})
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(ConfigError)
    async def _bad_request(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(IndexStoreError)
    async def _index_down(request: Request, exc: IndexStoreError) -> JSONResponse:
        log.warning("dashboard: the index failed: %s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=503)

    def rng(start: str | None, end: str | None) -> data.Range:
        return data.resolve_range(index, parse_time(start, "start"), parse_time(end, "end"))

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        from importlib.resources import files

        html = files("alerting.dashboard").joinpath("static/index.html").read_text(encoding="utf-8")
        return Response(html, media_type="text/html; charset=utf-8")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Whether the index answers, and how many items it holds."""
        return {"ok": True, "items": index.count()}

    @app.get("/api/overview")
    def overview(start: Time = None, end: Time = None) -> dict[str, Any]:
        """Totals, the overall chart, the companies and topics with most negatives, and alerts."""
        return data.overview(index, rng(start, end), names)

    @app.get("/api/series")
    def series(scope: Literal["overall", "topic", "entity"] = "overall", key: str | None = None,
               start: Time = None, end: Time = None) -> dict[str, Any]:
        """Items and negatives per bucket for one company (entity), topic, or everything."""
        if scope != "overall" and not key:
            raise ConfigError(f"scope {scope!r} needs a key: a company id or a topic name")
        r = rng(start, end)
        return {"range": r.as_json(), "scope": scope, "key": key, "series": data.series(index, r, scope, key)}

    @app.get("/api/items")
    def items(start: Time = None, end: Time = None, entity: str | None = None, topic: str | None = None,
              sentiment: Literal["negative", "neutral", "positive"] | None = None,
              q: Annotated[str | None, Query(max_length=200)] = None, limit: Limit = 100) -> dict[str, Any]:
        """The newest items of the range matching every filter given (``q``: words in title or body)."""
        found = data.items(index, rng(start, end), names, limit,
                           entity=entity, topic=topic, sentiment=sentiment, text=q)
        return {"items": found}

    @app.get("/api/alerts")
    def alerts(start: Time = None, end: Time = None, scope: Literal["overall", "topic", "entity"] | None = None,
               key: str | None = None, limit: Limit = 100) -> dict[str, Any]:
        """Alerts whose window overlaps the range, newest first."""
        r = rng(start, end)
        found = index.alerts(start=r.start, end=r.end, scope=scope, key=key, limit=limit)
        return {"alerts": [alert_view(a, names) for a in found]}

    return app
