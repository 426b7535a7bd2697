"""Negative-spike detection: pure functions from scored items (or bucket counts) to alerts.

Per scope key (a company id for ``entity``, a topic name for ``topic``, None for ``overall``)
and per event-time bucket of ``bucket_minutes`` (aligned to the UNIX epoch), the detector
counts items and negative items. Each item counts once, however many syndicated ``copies`` it
had: copies spread one report, they are not independent reports.

Baseline, learned from the buckets *before* the one tested, with exponential forgetting
(``halflife_buckets``): a level of the negative count and a negative share. Both are robust:
one bucket moves them by at most ``clip_mads`` running deviations, and an alerting bucket
teaches them only what they expected, so a burst does not teach the baseline that bursts are
normal. The share is shrunk towards a prior worth
``prior_weight`` items: for the overall key that is ``prior_share``; for companies and topics it
is the overall baseline share, so a company with little history (cold start) is judged against
the market's usual share. Every key's history starts with the data, not with its first item,
and empty buckets advance time; no key alerts before ``warmup_buckets`` buckets have passed.

A bucket alerts when it holds more negatives than the count level and its window (the
``window_buckets`` buckets ending with it, judged by the baseline from before the window)
satisfies all of: negatives >= ``min_negative``; negatives >= ``min_ratio`` times the expected
count (the count level per bucket); a one-sided binomial test of the window's negative share
against the baseline share gives p < ``p_value``. So a company needs both more bad news than
usual and a larger bad share than usual: a busy news day at the usual share is no alert.

Alerting buckets no more than ``cooldown_buckets`` apart form one episode and one alert (its id
from the scope, key and first bucket, so re-running detection updates it). Severity comes from
the episode's accumulated evidence (binomial p and observed/expected); an alert whose severity
rose after its first bucket is ``escalated``. A topic or overall alert whose negatives are
mostly (``explain_share``) about one company that has its own overlapping alert is dropped as
explained by it. Results do not depend on input order: a backfill gives what live running gave.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from scipy.stats import binomtest, nbinom, poisson

from alerting.index.base import BucketCount, Scope
from finsentinel.errors import ConfigError, SchemaError
from finsentinel.schema import Alert, Headline, ScoredItem, alert_id
from finsentinel.settings import DetectSettings

log = logging.getLogger(__name__)

SeriesKey = tuple[Scope, str | None]
Severity = Literal["warning", "high", "critical"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_RATE = 0.05  # a key never seen negative still expects one negative in twenty buckets
_SEVERITIES: tuple[Severity, ...] = ("warning", "high", "critical")
_SCOPE_ORDER: dict[Scope, int] = {"entity": 0, "topic": 1, "overall": 2}

def bucket_index(when: datetime, bucket_minutes: int) -> int:
    """The epoch-aligned bucket that ``when`` (timezone-aware) falls into."""
    return (when - EPOCH) // timedelta(minutes=bucket_minutes)


def bucket_start(index: int, bucket_minutes: int) -> datetime:
    """The UTC start of bucket ``index``."""
    return EPOCH + index * timedelta(minutes=bucket_minutes)


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

    def update_share(self, negative: float, total: int, share: float) -> None:
        """Learn one bucket's share; negatives beyond ``clip`` binomial deviations are not learned."""
        bound = share * total + self.clip * max(math.sqrt(total * share * (1.0 - share)), 1.0)
        self._neg = self.decay * self._neg + min(negative, bound)
        self._tot = self.decay * self._tot + total


@dataclass
class _Cell:
    """One bucket of one key: counts, and the negative items when detection runs on items."""

    total: int = 0
    negative: int = 0
    negatives: list[ScoredItem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Step:
    """One bucket of one key as the scan saw it, with the baseline learned before it."""

    negative: int
    total: int
    level: float
    baseline: float
    onset: int | None = None
    """When the bucket alerts: the offset where its burst starts (else None)."""
    anchor: int = 0
    """When the bucket alerts: the offset whose baseline judged it (the start of its window)."""

    def expected(self, base: _Step | None = None) -> float:
        """Negatives expected here by the count level of ``base`` (default: this bucket's own)."""
        return max((base or self).level, _MIN_RATE)


Series = dict[SeriesKey, dict[int, _Cell]]
Explainer = Callable[[SeriesKey, int, int], tuple[int, Counter[str]]]


def _p_value(negative: int, total: int, share: float) -> float:
    """One-sided binomial test: how likely at least ``negative`` of ``total`` at the baseline share."""
    return float(binomtest(negative, total, share, alternative="greater").pvalue) if total else 1.0


def _passes(window: Sequence[_Step], base: _Step, s: DetectSettings) -> bool:
    """The gates of an alert: enough negatives, ``min_ratio`` times the expected, p < ``p_value``."""
    negative, total = sum(x.negative for x in window), sum(x.total for x in window)
    if negative < s.min_negative or negative < s.min_ratio * sum(x.expected(base) for x in window):
        return False
    return _p_value(negative, total, base.baseline) < s.p_value


def _test(steps: Sequence[_Step], offset: int, s: DetectSettings) -> int | None:
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


def _scan(cells: Mapping[int, _Cell], first: int, last: int, priors: Sequence[float] | None,
          s: DetectSettings) -> list[_Step]:
    """Walk every bucket from ``first`` to ``last``, testing each against the baseline before it."""
    base = Baseline(s)
    steps: list[_Step] = []
    for offset in range(last - first + 1):
        cell = cells.get(first + offset)
        total, negative = (cell.total, cell.negative) if cell else (0, 0)
        share = base.share(priors[offset] if priors is not None else s.prior_share)
        steps.append(_Step(negative, total, base.level, share))
        onset = _test(steps, offset, s) if base.buckets >= s.warmup_buckets and negative else None
        if onset is None:
            base.update_count(negative)
            base.update_share(negative, total, share)
        else:  # an alerting bucket teaches the baseline only what it expected
            anchor = max(0, offset - s.window_buckets + 1)
            steps[offset] = _Step(negative, total, base.level, share, onset, anchor)
            base.update_count(min(negative, base.level))
            base.update_share(min(negative, share * total), total, share)
    return steps


def _episodes(onsets: Sequence[int | None], cooldown: int) -> list[tuple[int, list[int]]]:
    """Alerting offsets grouped where at most ``cooldown`` quiet buckets separate them, with each start."""
    groups: list[tuple[int, list[int]]] = []
    for offset, onset in enumerate(onsets):
        if onset is None:
            continue
        if groups and offset - groups[-1][1][-1] - 1 <= cooldown:
            groups[-1][1].append(offset)
        else:
            start = max(onset, groups[-1][1][-1] + 1) if groups else onset
            groups.append((start, [offset]))
    return groups


def _severity(observed: int, total: int, expected: float, share: float, s: DetectSettings) -> tuple[int, float]:
    """Severity level (index into warning/high/critical) and p-value of accumulated evidence."""
    p = _p_value(observed, total, share)
    ratio = observed / max(expected, _MIN_RATE)
    if p < s.critical_p_value and ratio >= s.critical_ratio:
        return 2, p
    if p < s.high_p_value and ratio >= s.high_ratio:
        return 1, p
    return 0, p


def _headline(item: ScoredItem) -> Headline:
    return Headline(id=item.id, title=item.title, url=item.url, source=item.source,
                    published_at=item.published_at, sentiment_score=item.sentiment_score)


def _dominant_topic(items: Sequence[ScoredItem]) -> str | None:
    """The most common topic of a company alert's negative items (ties: alphabetical)."""
    counts = Counter(i.topic for i in items)
    return min(counts, key=lambda t: (-counts[t], t)) if counts else None


def _build_alert(key: SeriesKey, lo: int, group: list[int], steps: list[_Step], cells: Mapping[int, _Cell],
                 first: int, s: DetectSettings) -> Alert:
    scope, name = key
    hi = group[-1]
    window = [cells.get(first + i) or _Cell() for i in range(lo, hi + 1)]
    base = steps[steps[group[0]].anchor]  # the episode is judged by the baseline from before it
    alerting = set(group)
    levels: list[int] = []
    p_values: list[float] = []
    observed = total = 0
    expected = 0.0
    for offset, cell in enumerate(window, start=lo):
        observed, total = observed + cell.negative, total + cell.total
        expected += steps[offset].expected(base)
        if offset in alerting:  # the evidence accumulated so far, as a live run saw it then
            level, p = _severity(observed, total, expected, base.baseline, s)
            levels.append(level)
            p_values.append(p)
    negatives = sorted((i for c in window for i in c.negatives),
                       key=lambda i: (i.sentiment_score, i.published_at, i.id))
    start = bucket_start(first + lo, s.bucket_minutes)
    return Alert(
        id=alert_id(scope, name, start), scope=scope,
        entity=name if scope == "entity" else None,
        topic=name if scope == "topic" else _dominant_topic(negatives) if scope == "entity" else None,
        start=start, end=bucket_start(first + hi + 1, s.bucket_minutes), bucket_minutes=s.bucket_minutes,
        observed=observed, expected=round(expected, 3), total=total,
        share=observed / total if total else 0.0, baseline_share=base.baseline, p_value=min(p_values),
        severity=_SEVERITIES[max(levels)], status="escalated" if max(levels) > levels[0] else "open",
        headlines=tuple(_headline(i) for i in negatives[: s.max_headlines]),
        sources=tuple(sorted({i.source for i in negatives})),
        created_at=bucket_start(first + group[0] + 1, s.bucket_minutes),  # when a live run first saw it
    )


def _explained(alert: Alert, key: SeriesKey, buckets: tuple[int, int], explainer: Explainer,
               entity_alerts: Mapping[str, list[Alert]], s: DetectSettings) -> str | None:
    """The company whose own alert explains this topic/overall alert, or None."""
    negatives, by_entity = explainer(key, *buckets)
    for entity, n in sorted(by_entity.items(), key=lambda kv: (-kv[1], kv[0])):
        if negatives == 0 or n < s.explain_share * negatives:
            break
        if any(a.start < alert.end and alert.start < a.end for a in entity_alerts.get(entity, ())):
            return entity
    return None


def _run(series: Series, first: int, last: int, s: DetectSettings, explainer: Explainer) -> list[Alert]:
    overall = _scan(series.get(("overall", None), {}), first, last, None, s)
    priors = [step.baseline for step in overall]
    found: dict[Scope, list[tuple[SeriesKey, tuple[int, int], Alert]]] = {"entity": [], "topic": [], "overall": []}
    for key in sorted(series, key=lambda k: (_SCOPE_ORDER[k[0]], k[1] or "")):
        if key[0] not in s.scopes:
            continue
        steps = overall if key[0] == "overall" else _scan(series[key], first, last, priors, s)
        for lo, group in _episodes([step.onset for step in steps], s.cooldown_buckets):
            alert = _build_alert(key, lo, group, steps, series[key], first, s)
            found[key[0]].append((key, (first + lo, first + group[-1]), alert))
    by_entity: dict[str, list[Alert]] = {}
    for _, _, alert in found["entity"]:
        by_entity.setdefault(alert.entity or "", []).append(alert)
    alerts = [a for _, _, a in found["entity"]]
    for key, buckets, alert in found["topic"] + found["overall"]:
        entity = _explained(alert, key, buckets, explainer, by_entity, s)
        if entity is None:
            alerts.append(alert)
        else:
            log.debug("suppressed %s alert %s for %s at %s: explained by the alert on %s",
                      key[0], alert.id, key[1] or "*", alert.start.isoformat(), entity)
    alerts.sort(key=lambda a: (a.start, _SCOPE_ORDER[a.scope], a.entity or a.topic or ""))
    return alerts


def _dedupe(items: Iterable[ScoredItem]) -> list[ScoredItem]:
    """One version per id (the latest fetched; ties by content), sorted by event time."""
    latest: dict[str, ScoredItem] = {}
    for item in items:
        seen = latest.get(item.id)
        if seen is None or (item.fetched_at, item.to_json()) > (seen.fetched_at, seen.to_json()):
            latest[item.id] = item
    return sorted(latest.values(), key=lambda i: (i.published_at, i.id))


def detect(items: Sequence[ScoredItem], settings: DetectSettings) -> list[Alert]:
    """Alerts for negative spikes in ``items``, in any order; sorted by start, scope and key."""
    unique = _dedupe(items)
    if not unique:
        return []
    minutes = settings.bucket_minutes
    series: Series = {}
    for item in unique:
        index = bucket_index(item.published_at, minutes)
        keys: list[SeriesKey] = [("overall", None), ("topic", item.topic)]
        keys += [("entity", e) for e in sorted(set(item.entities))]
        for key in keys:
            cell = series.setdefault(key, {}).setdefault(index, _Cell())
            cell.total += 1
            if item.sentiment == "negative":
                cell.negative += 1
                cell.negatives.append(item)

    def explainer(key: SeriesKey, lo: int, hi: int) -> tuple[int, Counter[str]]:
        negatives = [i for b in range(lo, hi + 1) for i in series[key].get(b, _Cell()).negatives]
        return len(negatives), Counter(e for i in negatives for e in set(i.entities))

    first = bucket_index(unique[0].published_at, minutes)
    last = bucket_index(unique[-1].published_at, minutes)
    return _run(series, first, last, settings, explainer)


def detect_counts(counts: Mapping[Scope, Sequence[BucketCount]], settings: DetectSettings) -> list[Alert]:
    """Alerts from per-scope bucket counts (e.g. :meth:`Index.bucket_counts`), without headlines.

    Counts do not say which company a topic's negatives were about, so only overall alerts
    can be explained away (by the companies' negatives); topic alerts are all kept.
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
            cell = series.setdefault((scope, row.key), {}).setdefault(index, _Cell())
            cell.total += row.total
            cell.negative += row.negative
    if not series:
        return []

    def explainer(key: SeriesKey, lo: int, hi: int) -> tuple[int, Counter[str]]:
        if key[0] != "overall":
            return 0, Counter()
        negatives = sum(series[key].get(b, _Cell()).negative for b in range(lo, hi + 1))
        by_entity: Counter[str] = Counter()
        for (scope, name), cells in series.items():
            if scope == "entity" and name is not None:
                by_entity[name] = sum(cells.get(b, _Cell()).negative for b in range(lo, hi + 1))
        return negatives, by_entity

    indexes = [b for cells in series.values() for b in cells]
    return _run(series, min(indexes), max(indexes), settings, explainer)


def detect_series(timestamps: Sequence[datetime], values: Sequence[float], settings: DetectSettings) -> list[datetime]:
    """Start times of anomalous episodes in a plain count series (one value per timestamp).

    The count half of :func:`detect`: each point is a bucket, its window (``window_buckets``
    points ending at it) tested against the robust, exponentially weighted level of the points
    before: window sum >= ``min_negative``, >= ``min_ratio`` x the expected sum, and an
    upper-tail test p < ``p_value`` (Poisson, or a negative binomial with the observed spread
    where the series is over-dispersed); the point itself must exceed its level. Alerting points
    no more than ``cooldown_buckets`` apart form one episode; the time its excess began is reported.
    """
    if len(timestamps) != len(values):
        raise SchemaError(f"detect_series: expected as many values as timestamps, got {len(values)} "
                          f"values for {len(timestamps)} timestamps")
    points = sorted(zip(timestamps, values, strict=True), key=lambda tv: tv[0])
    base = Baseline(settings)
    means: list[float] = []
    onsets: list[int | None] = []
    for offset, (_, value) in enumerate(points):
        means.append(max(base.level, _MIN_RATE))
        onsets.append(None)
        lo = max(0, offset - settings.window_buckets + 1)
        observed, expected = sum(v for _, v in points[lo : offset + 1]), sum(means[lo:])
        if (
            base.buckets >= settings.warmup_buckets and value > means[-1]
            and observed >= settings.min_negative and observed >= settings.min_ratio * expected
            and _upper_tail(observed, expected, base.deviation * math.sqrt(offset + 1 - lo)) < settings.p_value
        ):
            while lo < offset and not _starts_burst(points[lo][1], means[lo], settings):
                lo += 1
            onsets[-1] = lo
        base.update_count(value)
    return [points[start][0] for start, _ in _episodes(onsets, settings.cooldown_buckets)]


def _upper_tail(value: float, mean: float, deviation: float) -> float:
    """P(X >= value) for a count with this mean; negative binomial when the spread exceeds Poisson's."""
    k = math.ceil(value) - 1
    variance = (1.25 * deviation) ** 2  # mean absolute deviation x 1.25 ~ standard deviation
    if variance <= mean * 1.05:
        return float(poisson.sf(k, mean))
    return float(nbinom.sf(k, mean * mean / (variance - mean), mean / variance))
