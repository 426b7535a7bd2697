"""Negative-spike detection: from scored items (or bucket counts) to alerts.

:func:`detect_items` judges items in one pass (a backfill); an :class:`ItemDetector` kept from
run to run is fed only what is new and gives the same alerts (the state lives in
:mod:`alerting.detect.engine`).

Per scope key (a company id for ``entity``, a topic name for ``topic``, None for ``overall``)
and per event-time bucket of ``bucket_minutes`` (aligned to the UNIX epoch; an item's event time
is its publication time, or its fetch time if it claims to be published later: clock skew), the
detector counts items and negative items. Syndicated ``copies`` of an item spread one report: the item
counts once, unless ``count_copies`` is set.

Baseline, learned from the buckets *before* the one tested, with exponential forgetting
(``halflife_buckets``): a level of the negative count and a negative share. Both are robust:
one bucket moves them by at most ``clip_mads`` running deviations, and an alerting bucket
teaches them only what they expected, so a burst does not teach the baseline that bursts are
normal. The count level is seasonal (``seasonality``): the overall volume's hour-of-week
profile (after ``weekly_after_days`` of history; hour-of-day after ``daily_after_days``, see
:mod:`alerting.detect.seasonal`) scales what each hour expects, so the market open is not a
spike and a quiet night does not hide one. The share is shrunk towards a prior worth
``prior_weight`` items: for the overall key that is ``prior_share``; for companies and topics it
is the overall baseline share, so a company with little history (cold start) is judged against
the market's usual share. Every key's history starts with the data, not with its first item,
and empty buckets advance time; no key alerts before ``warmup_buckets`` buckets have passed.

A bucket alerts when it holds more negatives than expected and its window (the
``window_buckets`` buckets ending with it, judged by the baseline from before the window)
satisfies all of: negatives >= ``min_negative``; negatives >= ``min_ratio`` times the expected
count; a one-sided binomial test of the window's negative share against the baseline share
gives p < ``p_value``. So a company needs both more bad news than usual and a larger bad share
than usual: a busy news day at the usual share is no alert.

Only buckets closed by the watermark are judged, and late items are left out
(:mod:`alerting.detect.watermark`), so a backfill gives exactly what live running gave.
Episodes, severity and status: :mod:`alerting.detect.lifecycle`. A topic or overall alert whose
negatives are mostly (``explain_share``) about one company that has its own overlapping alert
is dropped as explained by it, if it was so at each of its alerting buckets when that closed
(:func:`~alerting.detect.lifecycle.explained_by`): what a live run raised, a backfill keeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerting.detect.baseline import Seasonality
from alerting.detect.buckets import bucket_index, bucket_start
from alerting.detect.engine import Engine
from alerting.detect.lifecycle import Cell, SeriesKey
from alerting.detect.watermark import Watermark, event_time
from alerting.index.base import BucketCount, Scope
from finsentinel.errors import ConfigError
from finsentinel.schema import Alert, ScoredItem
from finsentinel.settings import DetectSettings

__all__ = ["Detection", "ItemDetector", "detect", "detect_counts", "detect_items"]


def seasonal_factors(cells: Mapping[int, Cell], first: int, last: int, s: DetectSettings) -> list[float]:
    """Per bucket, how much busier than usual its hour is, learned from the volume before it."""
    season = Seasonality(s)
    return [season.next(b, cell.total if (cell := cells.get(b)) else 0.0) for b in range(first, last + 1)]


def _dedupe(items: Iterable[ScoredItem]) -> list[ScoredItem]:
    """One version per id (the latest fetched; ties by content)."""
    latest: dict[str, ScoredItem] = {}
    for item in items:
        seen = latest.get(item.id)
        if seen is None or (item.fetched_at, item.to_json()) > (seen.fetched_at, seen.to_json()):
            latest[item.id] = item
    return list(latest.values())


def _weight(item: ScoredItem, settings: DetectSettings) -> int:
    """How many reports ``item`` counts as: its syndicated copies only with ``count_copies``."""
    return item.copies if settings.count_copies else 1


def _item_explainer(engine: Engine, key: SeriesKey, lo: int, hi: int) -> tuple[float, Counter[str]]:
    """A key's negatives in buckets ``lo`` .. ``hi``, and per company (weighted as the alert's own
    counts are: copies count when count_copies is set)."""
    scan = engine.keys[key]
    negatives = [i for b in range(lo, hi + 1) for i in (scan.cells.get(b) or Cell()).negatives]
    by_entity: Counter[str] = Counter()
    for item in negatives:
        for entity in set(item.entities):
            by_entity[entity] += _weight(item, engine.s)
    return sum(_weight(i, engine.s) for i in negatives), by_entity


def _count_explainer(engine: Engine, key: SeriesKey, lo: int, hi: int) -> tuple[float, Counter[str]]:
    """As :func:`_item_explainer` from counts: only overall negatives can be split by company."""
    if key[0] != "overall":
        return 0.0, Counter()

    def negatives(cells: Mapping[int, Cell]) -> float:
        return sum((cells.get(b) or Cell()).negative for b in range(lo, hi + 1))

    by_entity: Counter[str] = Counter()
    for (scope, name), scan in engine.keys.items():
        if scope == "entity" and name is not None:
            by_entity[name] = round(negatives(scan.cells))
    return negatives(engine.keys[key].cells), by_entity


@dataclass(frozen=True, slots=True)
class Detection:
    """Alerts of one detection run, and what the watermark left out."""

    alerts: list[Alert]
    late: int
    """Items that arrived after their bucket had closed (indexed, not counted)."""
    open_items: int
    """Items in buckets the watermark has not closed yet, or of an arrival still open at ``now``
    (judged by a later run)."""


class ItemDetector:
    """Detection over scored items fed in one call (a backfill) or run after run (live).

    Each :meth:`feed` takes items not fed before (an item fed again is ignored: the first version
    fed counts) and judges the buckets the watermark closes; the state between runs is what
    :class:`~alerting.detect.engine.Engine` keeps, so a run costs what is new.
    """

    def __init__(self, settings: DetectSettings) -> None:
        minutes = settings.bucket_minutes
        self.settings = settings
        self.engine = Engine(settings, _item_explainer)
        self.watermark = Watermark(minutes, timedelta(minutes=minutes * settings.lateness_buckets))
        self.late = 0
        self.pending = 0
        self._fed: dict[str, datetime] = {}  # id -> when it was fetched
        self._open: Counter[int] = Counter()  # on-time items per bucket not judged yet

    def feed(self, items: Iterable[ScoredItem], now: datetime | None = None) -> None:
        """Count the items that arrived on time and judge the buckets closed since the last feed.

        ``now``: a live run's current time (an arrival still open then is left for later); None
        for a backfill.
        """
        minutes = self.settings.bucket_minutes
        marked = self.watermark.feed((i for i in _dedupe(items) if i.id not in self._fed), now)
        self._fed.update((i.id, i.fetched_at) for i in (*marked.on_time, *marked.late))
        self.late += len(marked.late)
        self.pending = len(marked.pending)
        for item in marked.on_time:
            # Items are counted in the bucket of their event time, the bucket the watermark judged them by.
            index = bucket_index(event_time(item), minutes)
            self._open[index] += 1
            weight = float(_weight(item, self.settings))
            keys: list[SeriesKey] = [("overall", None), ("topic", item.topic)]
            keys += [("entity", e) for e in sorted(set(item.entities))]
            for key in keys:
                cell = self.engine.cell(key, index)
                cell.total += weight
                if item.sentiment == "negative":
                    cell.negative += weight
                    cell.negatives.append(item)
        last = marked.last_closed(minutes)
        if last is not None:
            self.engine.judge_through(last)
            for index in [b for b in self._open if b <= last]:
                del self._open[index]

    def forget(self, fetched_before: datetime) -> None:
        """Forget which items fetched before ``fetched_before`` were fed (they are not fed again)."""
        self._fed = {k: v for k, v in self._fed.items() if v >= fetched_before}

    @property
    def open_items(self) -> int:
        """Items waiting: in buckets not closed yet, or of an arrival still open."""
        return sum(self._open.values()) + self.pending

    def detection(self) -> Detection:
        """Every alert so far, with the watermark's bookkeeping."""
        return Detection(self.engine.alerts(), self.late, self.open_items)


def detect_items(items: Sequence[ScoredItem], settings: DetectSettings, now: datetime | None = None) -> Detection:
    """Alerts for negative spikes in ``items`` (in any order), with the watermark's bookkeeping.

    A live run passes ``now``: the arrival still open then is left for a later run (see
    :mod:`alerting.detect.watermark`), so that no bucket is judged on part of its items.
    """
    detector = ItemDetector(settings)
    detector.feed(items, now)
    return detector.detection()


def detect(items: Sequence[ScoredItem], settings: DetectSettings) -> list[Alert]:
    """Alerts for negative spikes in ``items``, in any order; sorted by start, scope and key."""
    return detect_items(items, settings).alerts


def detect_counts(counts: Mapping[Scope, Sequence[BucketCount]], settings: DetectSettings) -> list[Alert]:
    """Alerts from per-scope bucket counts (e.g. :meth:`Index.bucket_counts`), without headlines.

    Counts carry no arrival times, so nothing is late; the last ``lateness_buckets`` buckets
    (and the last, unfinished one) are open, as for items. Counts do not say which company a
    topic's negatives were about, so only overall alerts can be explained away (by the
    companies' negatives); topic alerts are all kept.
    """
    minutes = settings.bucket_minutes
    engine = Engine(settings, _count_explainer)
    indexes: list[int] = []
    for scope, rows in counts.items():
        for row in rows:
            index = bucket_index(row.start, minutes)
            if bucket_start(index, minutes) != row.start:
                raise ConfigError(
                    f"bucket count at {row.start.isoformat()} is not on a {minutes}-minute boundary; "
                    "fetch counts with the same bucket_minutes as detect.bucket_minutes"
                )
            cell = engine.cell((scope, row.key), index)
            cell.total += row.total
            cell.negative += row.negative
            indexes.append(index)
    if not indexes:
        return []
    engine.judge_through(max(indexes) - settings.lateness_buckets - 1)
    return engine.alerts()
