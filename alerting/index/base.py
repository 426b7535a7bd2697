"""The index interface: a narrow Protocol that every search backend implements.

Semantics every backend honours (checked by ``tests/contract/index.py``):

* ``ensure`` creates what the backend needs and is idempotent;
* ``upsert`` is idempotent by item id: re-delivering an item updates it, never duplicates it;
* time ranges are half-open, ``start <= t < end``, on ``published_at`` (UTC);
* ``query`` returns newest first (ties broken by id);
* ``bucket_counts`` aligns buckets to the UNIX epoch, as :mod:`alerting.detect` does, and
  omits buckets that hold no items;
* alerts are upserted by :attr:`Alert.id`, so re-running detection updates an episode;
* labels are upserted by :attr:`Label.item_id`: a later label of an item replaces the earlier one;
* a write either succeeds for the whole batch, or raises :class:`IndexStoreError` (nothing or
  part of it written; the caller retries the batch, which is idempotent), or, for a backend
  that judges items one by one, raises :class:`BulkItemsError` naming the items it refused for
  good (the rest are written; the caller dead-letters the refused ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from finsentinel.errors import IndexStoreError
from finsentinel.schema import Alert, Label, ScoredItem, Sentiment

Scope = Literal["entity", "topic", "overall"]
QueryOrder = Literal["newest", "fetched"]


@dataclass(frozen=True, slots=True)
class BucketCount:
    """Items, negative items and positive items in one time bucket for one key of a scope."""

    start: datetime
    """Bucket start, timezone-aware UTC, a multiple of the bucket width since the epoch."""
    key: str | None
    """Company id (scope ``entity``), topic name (``topic``) or None (``overall``)."""
    total: int
    negative: int
    positive: int = 0


class BulkItemsError(IndexStoreError):
    """Some items of a bulk write were refused for good (e.g. a mapping error); the others were written."""

    def __init__(self, message: str, failed: dict[str, str], written: int) -> None:
        super().__init__(message)
        self.failed = failed
        """Item id -> why the backend refused it."""
        self.written = written
        """How many items of the batch were written."""


@runtime_checkable
class Index(Protocol):
    """A searchable store of scored items and the alerts raised on them."""

    def ensure(self) -> None:
        """Create tables / index mappings if they do not exist; idempotent."""
        ...

    def upsert(self, items: Sequence[ScoredItem]) -> int:
        """Insert or replace ``items`` by id in one write; return how many distinct ids were written."""
        ...

    def count(self) -> int:
        """How many items the index holds."""
        ...

    def get(self, id: str) -> ScoredItem | None:
        """The item with this id, or None."""
        ...

    def query(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        entity: str | None = None,
        topic: str | None = None,
        sentiment: Sentiment | None = None,
        text: str | None = None,
        limit: int | None = 100,
        fetched_after: datetime | None = None,
        order: QueryOrder = "newest",
    ) -> list[ScoredItem]:
        """Items matching every given filter, newest first; ``limit=None`` returns all of them.

        ``start`` / ``end`` bound the publication time (``[start, end)``); ``fetched_after``
        keeps items fetched after it, and ``order="fetched"`` sorts by fetch time, oldest first
        (ties by id): how live detection pages through what is new. ``text`` matches substrings of
        title and body, case-insensitively, in Chinese and English; whitespace-separated terms must
        all match.
        """
        ...

    def bucket_counts(
        self, start: datetime, end: datetime, bucket_minutes: int, by: Scope, key: str | None = None
    ) -> list[BucketCount]:
        """Totals, negatives and positives per bucket and key in ``[start, end)``, ordered by bucket then key.

        ``key`` keeps one company (``by="entity"``) or topic (``by="topic"``): what one key's
        series costs then does not grow with the number of keys. Ignored for ``overall``.
        """
        ...

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        """Insert or replace alerts by id."""
        ...

    def alerts(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        scope: Scope | None = None,
        key: str | None = None,
        limit: int | None = 100,
    ) -> list[Alert]:
        """Alerts whose window overlaps ``[start, end)``, of ``scope`` / ``key`` if given, newest first."""
        ...

    def upsert_labels(self, labels: Sequence[Label]) -> None:
        """Insert or replace labels by item id."""
        ...

    def labels(self, since: datetime | None = None, limit: int | None = None,
               item_id: str | None = None) -> list[Label]:
        """Labels given at or after ``since`` (all when None), of ``item_id`` only if given, newest
        first (ties by item id)."""
        ...

    def close(self) -> None:
        """Release connections; a later call reconnects."""
        ...
