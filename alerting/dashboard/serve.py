"""Serving the dashboard: open the index, check it answers, bind the port, run uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path

from alerting.index import open_index
from finsentinel.errors import ConfigError
from finsentinel.settings import IndexSettings

log = logging.getLogger(__name__)


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
    index = open_index(settings)  # a sqlite file must be an index already: the dashboard only reads
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
