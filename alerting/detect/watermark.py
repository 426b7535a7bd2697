"""Late and out-of-order items: an event-time watermark that live runs and backfills agree on.

Items arrive in the order they were fetched (``fetched_at``; items fetched within ``lateness`` of
each other count as one arrival, in event-time order). The watermark is the latest event time seen so far minus ``lateness``; a bucket is
*closed* once the watermark has passed its end. An item whose bucket was already closed when
it arrived is *late*: it stays indexed and searchable, but detection does not count it.

Every input is part of the items themselves, so a detection over a closed bucket gives the same
result whenever it runs: live, after every batch, or in one backfill over the whole history. A
live run says what time it is (``now``): an arrival whose ``lateness`` has not yet passed may still
grow, so its items wait (*pending*) and move no watermark; judged on a part of an arrival, a bucket
could lose or gain an alert, or an alert its start (and so its id), once the rest came.
Buckets not yet closed are not judged at all (no alert on a half-filled bucket that later
items would have diluted).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerting.detect.buckets import bucket_index, bucket_start
from finsentinel.schema import ScoredItem


def event_time(item: ScoredItem) -> datetime:
    """When the item happened: its publication time, but never after it was fetched (clock skew)."""
    return min(item.published_at, item.fetched_at)


@dataclass(frozen=True, slots=True)
class Watermarked:
    """Items split by the watermark, and the watermark after the last of them."""

    on_time: list[ScoredItem]
    late: list[ScoredItem]
    pending: list[ScoredItem]
    """Items of the arrival still open at ``now``: judged once it is complete."""
    watermark: datetime | None
    """Latest event time minus the allowed lateness (None without items)."""

    def last_closed(self, bucket_minutes: int) -> int | None:
        """The last bucket whose end the watermark has passed (None without items)."""
        return None if self.watermark is None else bucket_index(self.watermark, bucket_minutes) - 1


def split_late(items: Iterable[ScoredItem], bucket_minutes: int, lateness: timedelta,
               now: datetime | None = None) -> Watermarked:
    """Walk the items in arrival order and set aside those whose bucket had closed before they came.

    Items fetched within ``lateness`` of the first item of their group arrive together: one
    fetch of many feeds, or a backfill replayed in seconds, is judged as one arrival, so its
    items are not late merely because another feed of the same pass was read first. With
    ``now`` (a live run), the arrival that ``now`` falls within is not complete yet: its items
    are pending (None: every arrival is complete, as in a backfill).
    """
    on_time: list[ScoredItem] = []
    late: list[ScoredItem] = []
    latest: datetime | None = None
    width = timedelta(minutes=bucket_minutes)
    ordered = sorted(items, key=lambda i: (i.fetched_at, event_time(i), i.id))
    start = 0
    while start < len(ordered):
        horizon = ordered[start].fetched_at + lateness
        if now is not None and now <= horizon:  # items fetched until the horizon may still come
            return Watermarked(on_time, late, ordered[start:], None if latest is None else latest - lateness)
        stop = start
        while stop < len(ordered) and ordered[stop].fetched_at <= horizon:
            stop += 1
        group = ordered[start:stop]
        for item in group:
            when = event_time(item)
            closes = bucket_start(bucket_index(when, bucket_minutes), bucket_minutes) + width + lateness
            (late if latest is not None and latest >= closes else on_time).append(item)
        newest = max(event_time(i) for i in group)
        latest = newest if latest is None else max(latest, newest)
        start = stop
    return Watermarked(on_time, late, [], None if latest is None else latest - lateness)
