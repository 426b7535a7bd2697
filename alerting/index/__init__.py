"""Search index: the Protocol in :mod:`alerting.index.base`, backends beside it."""

from __future__ import annotations

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


__all__ = ["BucketCount", "BulkItemsError", "Index", "Scope", "make_index"]
