"""FinSentinel: financial sentiment and news-risk monitor (shared core)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("finsentinel")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
