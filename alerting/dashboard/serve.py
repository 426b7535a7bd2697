"""Serving the dashboard: open the index, check it answers, bind the port, run uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import socket
import sqlite3
from pathlib import Path

from alerting.index.base import Index
from finsentinel.errors import ConfigError
from finsentinel.settings import IndexSettings

log = logging.getLogger(__name__)


def open_index(settings: IndexSettings) -> Index:
    """The configured index, checked to answer; a sqlite file must exist already (the dashboard only reads)."""
    from alerting.index import make_index

    if settings.backend == "sqlite" and not Path(settings.path).is_file():
        raise ConfigError(
            f"no sqlite index at {settings.path}: run `finsentinel alert` (or `make demo`, then "
            "`finsentinel dashboard --index demo-workspace/index.sqlite3`) to fill one, or set alerting.index.path"
        )
    if settings.backend == "sqlite" and not _holds_items(Path(settings.path)):
        # opening another file as an index would add the index's tables to it
        raise ConfigError(
            f"{settings.path} is not a FinSentinel index (no items table); expected the index file, e.g. "
            "demo-workspace/index.sqlite3, not the bus or ingest database beside it"
        )
    index = make_index(settings)
    index.count()  # fail here, with the backend's own message, rather than on the first page view
    return index


def _holds_items(path: Path) -> bool:
    """Whether the sqlite file at ``path`` has the index's ``items`` table (read without writing)."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='items'").fetchone() is not None
        finally:
            db.close()
    except sqlite3.Error:  # not a database at all
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a :class:`ConfigError` that says how to pick another."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # hold the port from now on, as uvicorn's own bind does
    except (OSError, OverflowError) as exc:  # OverflowError: a port past 65535 (--port is not range-checked)
        sock.close()
        raise ConfigError(
            f"dashboard: cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}; "
            "choose another with --port or alerting.dashboard.port"
        ) from exc
    return sock


def _loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (a loopback address or ``localhost``)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(settings: IndexSettings, watchlist: Path | None, host: str, port: int,
          credentials: tuple[str, str] | None = None) -> None:
    """Serve the dashboard over ``settings``' index until interrupted (basic auth with ``credentials``)."""
    import uvicorn

    from alerting.dashboard.app import create_app
    from nlp.linking import Watchlist

    names = {c.id: c.name for c in Watchlist.load(watchlist).companies}
    index = open_index(settings)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    log.info("dashboard: http://%s:%d/ over the %s index", shown, sock.getsockname()[1], settings.backend)
    if credentials is None and not _loopback(host):
        log.warning("dashboard: listening on %s with no password: anyone who reaches it reads the index; set "
                    "alerting.dashboard.username and password", host)
    try:
        # log_config=None: logging is configured once, by the entry point
        app = create_app(index, names, credentials)
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
        server.run(sockets=[sock])
    finally:
        sock.close()
        index.close()
