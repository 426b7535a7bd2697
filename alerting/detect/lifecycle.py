"""Alert lifecycle: alerting buckets grouped into episodes, each one alert that opens, escalates, resolves.

* **open**: the first alerting bucket of an episode creates the alert; its id comes from the
  scope, key and first bucket, so every later run updates the same alert (one alert per
  episode, never one per bucket).
* **escalated**: the episode's accumulated evidence (binomial p-value and observed/expected)
  reached a higher severity than when it opened.
* **resolved**: the watermark has passed the episode's last alerting bucket by more than
  ``cooldown_buckets``, so no later bucket can join it; a new burst after that is a new episode.

Each alert carries the numbers behind it (observed vs expected negatives, share vs baseline
share, p-value), the most negative headlines with their links, and the sources.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from scipy.stats import binomtest

from alerting.detect.buckets import bucket_start
from alerting.index.base import Scope
from finsentinel.schema import Alert, Headline, ScoredItem, alert_id
from finsentinel.settings import DetectSettings

SeriesKey = tuple[Scope, str | None]
Severity = Literal["warning", "high", "critical"]
Status = Literal["open", "escalated", "resolved"]
SEVERITIES: tuple[Severity, ...] = ("warning", "high", "critical")
MIN_RATE = 0.05  # a key never seen negative still expects one negative in twenty buckets


@dataclass
class Cell:
    """One bucket of one key: counts, and the negative items when detection runs on items."""

    total: float = 0.0
    negative: float = 0.0
    negatives: list[ScoredItem] = field(default_factory=list)


class Step(NamedTuple):
    """One bucket of one key as the scan saw it, with the baseline learned before it.

    A named tuple, not a frozen dataclass: one is made for every key in every bucket, and a frozen
    dataclass's ``__init__`` (a ``object.__setattr__`` per field) was most of the detector's time
    with thousands of companies."""

    negative: float
    total: float
    level: float
    """Deseasonalised expected negatives per bucket, learned before this bucket."""
    baseline: float
    """Baseline negative share, learned before this bucket."""
    factor: float = 1.0
    """Seasonal factor of this bucket's hour (1: no seasonality)."""
    onset: int | None = None
    """When the bucket alerts: the bucket where its burst starts (else None)."""
    anchor: int = 0
    """When the bucket alerts: the bucket whose baseline judged it (the start of its window)."""

    def expected(self, base: Step | None = None) -> float:
        """Negatives expected in this bucket by the level of ``base`` (default: its own)."""
        return max((base or self).level * self.factor, MIN_RATE)


def p_value(negative: float, total: float, share: float) -> float:
    """One-sided binomial test: how likely at least ``negative`` of ``total`` at the baseline share."""
    n, k = round(total), round(negative)
    return float(binomtest(k, n, share, alternative="greater").pvalue) if n else 1.0


def severity(observed: float, total: float, expected: float, share: float, s: DetectSettings) -> tuple[int, float]:
    """Severity level (index into warning/high/critical) and p-value of accumulated evidence."""
    p = p_value(observed, total, share)
    ratio = observed / max(expected, MIN_RATE)
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


def build_alert(key: SeriesKey, lo: int, group: Sequence[int], steps: Mapping[int, Step],
                cells: Mapping[int, Cell], last: int, s: DetectSettings) -> Alert:
    """The alert of one episode: buckets ``lo`` .. ``group[-1]`` (its alerting buckets ``group``),
    as it stands once bucket ``last`` has been judged."""
    scope, name = key
    hi = group[-1]
    window = [cells.get(b) or Cell() for b in range(lo, hi + 1)]
    base = steps[steps[group[0]].anchor]  # the episode is judged by the baseline from before it
    alerting = set(group)
    levels: list[int] = []
    p_values: list[float] = []
    observed = total = expected = 0.0
    for bucket, cell in enumerate(window, start=lo):
        observed, total = observed + cell.negative, total + cell.total
        expected += steps[bucket].expected(base)
        if bucket in alerting:  # the evidence accumulated so far, as a live run saw it then
            level, p = severity(observed, total, expected, base.baseline, s)
            levels.append(level)
            p_values.append(p)
    negatives = sorted((i for c in window for i in c.negatives),
                       key=lambda i: (i.sentiment_score, i.published_at, i.id))
    start = bucket_start(lo, s.bucket_minutes)
    resolved = last - hi > s.cooldown_buckets  # no later bucket can join the episode
    status: Status = "resolved" if resolved else "escalated" if max(levels) > levels[0] else "open"
    return Alert(
        id=alert_id(scope, name, start), scope=scope,
        entity=name if scope == "entity" else None,
        topic=name if scope == "topic" else _dominant_topic(negatives) if scope == "entity" else None,
        start=start, end=bucket_start(hi + 1, s.bucket_minutes), bucket_minutes=s.bucket_minutes,
        observed=round(observed), expected=round(expected, 3), total=round(total),
        share=observed / total if total else 0.0, baseline_share=base.baseline, p_value=min(p_values),
        severity=SEVERITIES[max(levels)], status=status,
        headlines=tuple(_headline(i) for i in negatives[: s.max_headlines]),
        sources=tuple(sorted({i.source for i in negatives})),
        created_at=bucket_start(group[0] + 1, s.bucket_minutes),  # when a live run first saw it
    )


Explainer = Callable[[SeriesKey, int, int], tuple[float, Counter[str]]]
Episode = tuple[int, list[int]]
"""An episode in absolute bucket numbers: its first bucket and its alerting buckets."""


def explained_by(key: SeriesKey, lo: int, upto: int, explainer: Explainer,
                 entity_episodes: Mapping[str, Sequence[Episode]], s: DetectSettings) -> str | None:
    """The company that explains a topic/overall episode starting at bucket ``lo`` as it stood
    when bucket ``upto`` closed: most (``explain_share``) of its negatives so far are about that
    company, whose own alert already overlapped it then. None when no company does.

    Judged on what a live run saw at ``upto``, never on later buckets, so a live run and a
    backfill agree: an alert a live run raised is not taken back when a company alert comes later.
    """
    negatives, by_entity = explainer(key, lo, upto)
    for entity, n in sorted(by_entity.items(), key=lambda kv: (-kv[1], kv[0])):
        if negatives == 0 or n < s.explain_share * negatives:
            break
        # the company's alert as it stood at ``upto``: an alerting bucket of it within lo .. upto
        if any(lo <= b <= upto for _, alerting in entity_episodes.get(entity, ()) for b in alerting):
            return entity
    return None
