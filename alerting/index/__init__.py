"""Search index: the Protocol in :mod:`alerting.index.base`, backends beside it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from alerting.index.base import BucketCount, BulkItemsError, Index, Scope
from finsentinel.errors import ConfigError

if TYPE_CHECKING:
    from finsentinel.settings import IndexSettings


def make_index(settings: IndexSettings) -> Index:
    """Build the configured backend. No connection is made until first use."""
    if settings.backend == "sqlite":
        from alerting.index.sqlite import SqliteIndex

        return SqliteIndex(settings.path, search_chars=settings.search_chars)
    if settings.backend == "elasticsearch":
        from alerting.index.elastic import ElasticIndex

        return ElasticIndex(settings)
    raise ConfigError(f"alerting.index.backend: expected 'sqlite' or 'elasticsearch', got {settings.backend!r}")


def open_index(settings: IndexSettings) -> Index:
    """The configured index for a command that reads or labels what the workers indexed, checked to
    answer: a sqlite file must be an index already (never made empty, nor index tables added to
    another database); Elasticsearch must be reachable."""
    path = Path(settings.path)
    if settings.backend == "sqlite" and not path.is_file():
        raise ConfigError(
            f"no sqlite index at {path}: run `finsentinel alert` (or `make demo`, whose index is "
            "demo-workspace/index.sqlite3) to fill one, or set alerting.index.path"
        )
    if settings.backend == "sqlite" and not _holds_items(path):
        raise ConfigError(
            f"{path} is not a FinSentinel index (no items table); expected the index file, e.g. "
            "demo-workspace/index.sqlite3, not the bus or ingest database beside it"
        )
    index = make_index(settings)
    index.count()  # fail here, with the backend's own message, rather than at the first use
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


__all__ = ["BucketCount", "BulkItemsError", "Index", "Scope", "make_index", "open_index"]
