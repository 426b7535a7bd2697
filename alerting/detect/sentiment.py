"""Negative-spike detection: pure functions from scored items (or bucket counts) to alerts.

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

import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerting.detect.buckets import bucket_index, bucket_start
from alerting.detect.lifecycle import (
    Cell,
    Episode,
    Explainer,
    SeriesKey,
    Step,
    build_alert,
    episodes,
    explained_by,
    p_value,
)
from alerting.detect.seasonal import RobustLevel, SeasonalBaseline, SlotProfile
from alerting.detect.watermark import event_time, split_late
from alerting.index.base import BucketCount, Scope
from finsentinel.errors import ConfigError
from finsentinel.schema import Alert, ScoredItem
from finsentinel.settings import DetectSettings

log = logging.getLogger(__name__)

_SCOPE_ORDER: dict[Scope, int] = {"entity": 0, "topic": 1, "overall": 2}
_FACTOR_RANGE = (0.1, 10.0)  # the busiest hour expects at most ten times the level, the quietest a tenth

__all__ = ["Detection", "detect", "detect_counts", "detect_items"]


class Baseline:
    """Exponentially weighted, clipped level of a count and of a negative share (internal state)."""

    def __init__(self, settings: DetectSettings) -> None:
        self.decay = 0.5 ** (1.0 / settings.halflife_buckets)
        self.clip = settings.clip_mads
        self.prior_weight = settings.prior_weight
        self.buckets = 0
        self._w = self._x = self._d = 0.0  # sums of weights, clipped counts, absolute deviations
        self._neg = self._tot = 0.0  # decayed sums of (clipped) negatives and totals

    @property
    def level(self) -> float:
        """Expected count per bucket (bias-free weighted mean of the clipped counts so far)."""
        return self._x / self._w if self._w else 0.0

    @property
    def deviation(self) -> float:
        """Weighted mean absolute deviation of the counts from the level."""
        return self._d / self._w if self._w else 0.0

    def share(self, prior: float) -> float:
        """Baseline negative share, shrunk towards ``prior``."""
        return (self._neg + self.prior_weight * prior) / (self._tot + self.prior_weight)

    def update_count(self, value: float) -> None:
        """Learn one bucket's count, moved at most ``clip`` deviations from the level."""
        level = self.level
        if self._w:
            bound = self.clip * max(self.deviation, 1.0)
            value = min(max(value, level - bound), level + bound)
        self._d = self.decay * self._d + abs(value - level)
        self._x = self.decay * self._x + value
        self._w = self.decay * self._w + 1.0
        self.buckets += 1

    def update_share(self, negative: float, total: float, share: float) -> None:
        """Learn one bucket's share; negatives beyond ``clip`` binomial deviations are not learned."""
        bound = share * total + self.clip * max(math.sqrt(total * share * (1.0 - share)), 1.0)
        self._neg = self.decay * self._neg + min(negative, bound)
        self._tot = self.decay * self._tot + total


Series = dict[SeriesKey, dict[int, Cell]]


def _passes(window: Sequence[Step], base: Step, s: DetectSettings) -> bool:
    """The gates of an alert: enough negatives, ``min_ratio`` times the expected, p < ``p_value``."""
    negative, total = sum(x.negative for x in window), sum(x.total for x in window)
    if negative < s.min_negative or negative < s.min_ratio * sum(x.expected(base) for x in window):
        return False
    return p_value(negative, total, base.baseline) < s.p_value


def _test(steps: Sequence[Step], offset: int, s: DetectSettings) -> int | None:
    """Test the window ending at ``offset``; return where its burst begins, or None.

    The whole window is judged by the baseline from before it, so the burst under test has
    not yet taught the baseline anything. Leading buckets that are not burst-like themselves
    (see :func:`_starts_burst`) are left out of the burst while what remains still passes.
    """
    lo = max(0, offset - s.window_buckets + 1)
    base = steps[lo]
    if steps[offset].negative <= steps[offset].expected(base) or not _passes(steps[lo : offset + 1], base, s):
        return None  # the current bucket must itself carry excess negatives
    while (lo < offset and not _starts_burst(steps[lo].negative, steps[lo].expected(base), s)
           and _passes(steps[lo + 1 : offset + 1], base, s)):
        lo += 1
    return lo


def _starts_burst(value: float, expected: float, s: DetectSettings) -> bool:
    """Whether a leading bucket of an alerting window belongs to the burst: its part of
    ``min_negative`` and ``min_ratio`` times what was expected (one stray negative is not)."""
    return value > expected and value >= max(s.min_negative / s.window_buckets, s.min_ratio * expected)


def seasonal_factors(cells: Mapping[int, Cell], first: int, last: int, s: DetectSettings) -> list[float]:
    """Per bucket, how much busier than usual its hour is, learned from the volume before it."""
    if not s.seasonality:
        return [1.0] * (last - first + 1)
    per_week = 7 * 24 * 60 / s.bucket_minutes
    base = SeasonalBaseline(
        RobustLevel(s.halflife_buckets, per_week, s.clip_mads, spread=0.5, min_spread=0.05),
        SlotProfile(1.0 - (1.0 - s.season_rate_per_hour) ** (s.bucket_minutes / 60.0),
                    timedelta(days=s.weekly_after_days), timedelta(days=s.daily_after_days)),
    )
    factors: list[float] = []
    for offset in range(last - first + 1):
        when = bucket_start(first + offset, s.bucket_minutes)
        factors.append(min(max(math.exp(base.profile.offset(when)), _FACTOR_RANGE[0]), _FACTOR_RANGE[1]))
        cell = cells.get(first + offset)
        base.learn(when, math.log1p(cell.total if cell else 0.0))
    return factors


def _scan(cells: Mapping[int, Cell], first: int, last: int, priors: Sequence[float] | None,
          factors: Sequence[float], s: DetectSettings) -> list[Step]:
    """Walk every bucket from ``first`` to ``last``, testing each against the baseline before it."""
    base = Baseline(s)
    steps: list[Step] = []
    for offset in range(last - first + 1):
        cell = cells.get(first + offset)
        total, negative = (cell.total, cell.negative) if cell else (0.0, 0.0)
        share = base.share(priors[offset] if priors is not None else s.prior_share)
        factor = factors[offset]
        steps.append(Step(negative, total, base.level, share, factor))
        onset = _test(steps, offset, s) if base.buckets >= s.warmup_buckets and negative else None
        if onset is None:
            base.update_count(negative / factor)
            base.update_share(negative, total, share)
        else:  # an alerting bucket teaches the baseline only what it expected
            anchor = max(0, offset - s.window_buckets + 1)
            steps[offset] = Step(negative, total, base.level, share, factor, onset, anchor)
            base.update_count(min(negative / factor, base.level))
            base.update_share(min(negative, share * total), total, share)
    return steps


def _run(series: Series, first: int, last: int, s: DetectSettings, explainer: Explainer) -> list[Alert]:
    overall_cells = series.get(("overall", None), {})
    factors = seasonal_factors(overall_cells, first, last, s)
    overall = _scan(overall_cells, first, last, None, factors, s)
    priors = [step.baseline for step in overall]
    found: dict[Scope, list[tuple[SeriesKey, Episode, Alert]]] = {"entity": [], "topic": [], "overall": []}
    for key in sorted(series, key=lambda k: (_SCOPE_ORDER[k[0]], k[1] or "")):
        if key[0] not in s.scopes:
            continue
        steps = overall if key[0] == "overall" else _scan(series[key], first, last, priors, factors, s)
        for lo, group in episodes([step.onset for step in steps], s.cooldown_buckets):
            alert = build_alert(key, lo, group, steps, series[key], first, s)
            found[key[0]].append((key, (first + lo, [first + g for g in group]), alert))
    by_entity: dict[str, list[Episode]] = {}
    for key, episode, _ in found["entity"]:
        by_entity.setdefault(key[1] or "", []).append(episode)
    alerts = [a for _, _, a in found["entity"]]
    for key, (lo, alerting), alert in found["topic"] + found["overall"]:
        # kept once any of its alerting buckets was unexplained when it closed (a live run raised it then)
        entities = [explained_by(key, lo, upto, explainer, by_entity, s) for upto in alerting]
        if None in entities:
            alerts.append(alert)
        else:
            log.debug("suppressed %s alert %s for %s at %s: explained by the alert on %s",
                      key[0], alert.id, key[1] or "*", alert.start.isoformat(), entities[0])
    alerts.sort(key=lambda a: (a.start, _SCOPE_ORDER[a.scope], a.entity or a.topic or ""))
    return alerts


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


@dataclass(frozen=True, slots=True)
class Detection:
    """Alerts of one detection run, and what the watermark left out."""

    alerts: list[Alert]
    late: int
    """Items that arrived after their bucket had closed (indexed, not counted)."""
    open_items: int
    """Items in buckets the watermark has not closed yet, or of an arrival still open at ``now``
    (judged by a later run)."""


def detect_items(items: Sequence[ScoredItem], settings: DetectSettings, now: datetime | None = None) -> Detection:
    """Alerts for negative spikes in ``items`` (in any order), with the watermark's bookkeeping.

    A live run passes ``now``: the arrival still open then is left for a later run (see
    :mod:`alerting.detect.watermark`), so that no bucket is judged on part of its items.
    """
    minutes = settings.bucket_minutes
    marked = split_late(_dedupe(items), minutes, timedelta(minutes=minutes * settings.lateness_buckets), now)
    last = marked.last_closed(minutes)
    # Items are counted in the bucket of their event time, the bucket the watermark judged them by.
    buckets = {i.id: bucket_index(event_time(i), minutes) for i in marked.on_time}
    closed = [i for i in marked.on_time if last is not None and buckets[i.id] <= last]
    waiting = len(marked.on_time) - len(closed) + len(marked.pending)
    if not closed or last is None:
        return Detection([], len(marked.late), waiting)
    series: Series = {}
    for item in closed:
        index = buckets[item.id]
        weight = float(_weight(item, settings))
        keys: list[SeriesKey] = [("overall", None), ("topic", item.topic)]
        keys += [("entity", e) for e in sorted(set(item.entities))]
        for key in keys:
            cell = series.setdefault(key, {}).setdefault(index, Cell())
            cell.total += weight
            if item.sentiment == "negative":
                cell.negative += weight
                cell.negatives.append(item)

    def explainer(key: SeriesKey, lo: int, hi: int) -> tuple[float, Counter[str]]:
        # weighted as the alert's own counts are (copies count when count_copies is set)
        negatives = [i for b in range(lo, hi + 1) for i in series[key].get(b, Cell()).negatives]
        by_entity: Counter[str] = Counter()
        for item in negatives:
            for entity in set(item.entities):
                by_entity[entity] += _weight(item, settings)
        return sum(_weight(i, settings) for i in negatives), by_entity

    first = min(buckets[i.id] for i in closed)
    alerts = _run(series, first, last, settings, explainer)
    return Detection(alerts, len(marked.late), waiting)


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
    series: Series = {}
    for scope, rows in counts.items():
        for row in rows:
            index = bucket_index(row.start, minutes)
            if bucket_start(index, minutes) != row.start:
                raise ConfigError(
                    f"bucket count at {row.start.isoformat()} is not on a {minutes}-minute boundary; "
                    "fetch counts with the same bucket_minutes as detect.bucket_minutes"
                )
            cell = series.setdefault((scope, row.key), {}).setdefault(index, Cell())
            cell.total += row.total
            cell.negative += row.negative
    indexes = [b for cells in series.values() for b in cells]
    if not indexes:
        return []
    last = max(indexes) - settings.lateness_buckets - 1
    if last < min(indexes):
        return []

    def explainer(key: SeriesKey, lo: int, hi: int) -> tuple[float, Counter[str]]:
        if key[0] != "overall":
            return 0.0, Counter()
        negatives = sum(series[key].get(b, Cell()).negative for b in range(lo, hi + 1))
        by_entity: Counter[str] = Counter()
        for (scope, name), cells in series.items():
            if scope == "entity" and name is not None:
                by_entity[name] = round(sum(cells.get(b, Cell()).negative for b in range(lo, hi + 1)))
        return negatives, by_entity

    return _run(series, min(indexes), last, settings, explainer)

