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


class Watermark:
    """The watermark walk, resumable: items handed to :meth:`feed` in one call or in many, in
    arrival order or not, are split as one call with all of them would split them.

    Arrivals are processed whole: ``feed`` keeps the latest event time and where the last processed
    arrival ends (its horizon). An item fetched before that horizon but handed over only later (an
    index that lagged behind by more than the lateness) can no longer join its arrival: it is late.
    """

    def __init__(self, bucket_minutes: int, lateness: timedelta) -> None:
        self.bucket_minutes, self.lateness = bucket_minutes, lateness
        self.latest: datetime | None = None
        self.horizon: datetime | None = None
        """The end of the last processed arrival: items fetched up to it have been judged."""

    def feed(self, items: Iterable[ScoredItem], now: datetime | None = None) -> Watermarked:
        """Split ``items`` (not fed before) into on time, late and pending (see :func:`split_late`)."""
        on_time: list[ScoredItem] = []
        late: list[ScoredItem] = []
        width = timedelta(minutes=self.bucket_minutes)
        ordered = sorted(items, key=lambda i: (i.fetched_at, event_time(i), i.id))
        start = 0
        while start < len(ordered) and self.horizon is not None and ordered[start].fetched_at <= self.horizon:
            late.append(ordered[start])  # its arrival was judged without it
            start += 1
        while start < len(ordered):
            horizon = ordered[start].fetched_at + self.lateness
            if now is not None and now <= horizon:  # items fetched until the horizon may still come
                return Watermarked(on_time, late, ordered[start:], self.watermark)
            stop = start
            while stop < len(ordered) and ordered[stop].fetched_at <= horizon:
                stop += 1
            group = ordered[start:stop]
            for item in group:
                when = event_time(item)
                closes = bucket_start(bucket_index(when, self.bucket_minutes), self.bucket_minutes) + width + self.lateness
                (late if self.latest is not None and self.latest >= closes else on_time).append(item)
            newest = max(event_time(i) for i in group)
            self.latest = newest if self.latest is None else max(self.latest, newest)
            self.horizon = horizon
            start = stop
        return Watermarked(on_time, late, [], self.watermark)

    @property
    def watermark(self) -> datetime | None:
        """Latest event time minus the allowed lateness (None before any arrival)."""
        return None if self.latest is None else self.latest - self.lateness


def split_late(items: Iterable[ScoredItem], bucket_minutes: int, lateness: timedelta,
               now: datetime | None = None) -> Watermarked:
    """Walk the items in arrival order and set aside those whose bucket had closed before they came.

    Items fetched within ``lateness`` of the first item of their group arrive together: one
    fetch of many feeds, or a backfill replayed in seconds, is judged as one arrival, so its
    items are not late merely because another feed of the same pass was read first. With
    ``now`` (a live run), the arrival that ``now`` falls within is not complete yet: its items
    are pending (None: every arrival is complete, as in a backfill).
    """
    return Watermark(bucket_minutes, lateness).feed(items, now)
