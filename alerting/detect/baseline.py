"""Per key, what a bucket is expected to hold: a robust, exponentially weighted level of the negative
count and a negative share (:class:`Baseline`), and the overall volume's seasonal factor per bucket
(:class:`Seasonality`); the detector that uses them is :mod:`alerting.detect.engine`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta

from alerting.detect.buckets import bucket_start
from alerting.detect.lifecycle import Step
from alerting.detect.seasonal import RobustLevel, SeasonalBaseline, SlotProfile
from finsentinel.settings import DetectSettings

_FACTOR_RANGE = (0.1, 10.0)  # the busiest hour expects at most ten times the level, the quietest a tenth


class Baseline:
    """Exponentially weighted, clipped level of a count and of a negative share (internal state)."""

    def __init__(self, settings: DetectSettings) -> None:
        self.decay = 0.5 ** (1.0 / settings.halflife_buckets)
        self.clip = settings.clip_mads
        self.prior_weight = settings.prior_weight
        self.buckets = 0
        self._w = self._x = self._d = 0.0  # sums of weights, clipped counts, absolute deviations
        self._neg = self._tot = 0.0  # decayed sums of (clipped) negatives and totals

    def copy(self) -> Baseline:
        """An independent copy (a key first seen now starts from the state of one never seen)."""
        twin = object.__new__(Baseline)
        twin.__dict__.update(self.__dict__)
        return twin

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

    # Both updates run for every key in every bucket where it has items (thousands of companies):
    # written out with locals instead of the properties and min/max, the same arithmetic in the same
    # order, so the results are the same to the bit. Buckets without items: :meth:`idle`.
    def update_count(self, value: float) -> None:
        """Learn one bucket's count, moved at most ``clip`` deviations from the level."""
        w = self._w
        level = self._x / w if w else 0.0
        if w:
            deviation = self._d / w
            bound = self.clip * (deviation if deviation > 1.0 else 1.0)
            low, high = level - bound, level + bound
            value = low if value < low else (high if value > high else value)
        decay = self.decay
        self._d = decay * self._d + abs(value - level)
        self._x = decay * self._x + value
        self._w = decay * w + 1.0
        self.buckets += 1

    def update_share(self, negative: float, total: float, share: float) -> None:
        """Learn one bucket's share; negatives beyond ``clip`` binomial deviations are not learned."""
        decay = self.decay
        if not total:  # no items: nothing above the bound (which is at least ``clip``) to cut
            self._neg = decay * self._neg + negative
            self._tot = decay * self._tot + total
            return
        spread = math.sqrt(total * share * (1.0 - share))
        bound = share * total + self.clip * (spread if spread > 1.0 else 1.0)
        self._neg = decay * self._neg + (negative if negative < bound else bound)
        self._tot = decay * self._tot + total

    def idle(self, lo: int, hi: int, keep: int, overall: Mapping[int, Step], steps: dict[int, Step]) -> None:
        """Learn buckets ``lo`` .. ``hi`` in which the key had no items, as
        :meth:`~alerting.detect.engine.KeyScan.step` would (``update_count(0.0)``, then
        ``update_share(0.0, 0.0, share)``): the same arithmetic in the same order, to the bit, in a
        loop over locals, since most keys of a large watchlist have no items in most buckets. The
        step of each bucket from ``keep`` on goes to ``steps``, with the prior (baseline share) and
        seasonal factor of ``overall``'s step of that bucket."""
        w, x, d, neg, tot = self._w, self._x, self._d, self._neg, self._tot
        decay, clip, weight = self.decay, self.clip, self.prior_weight
        for bucket in range(lo, hi + 1):
            level = x / w if w else 0.0
            if bucket >= keep:
                ref = overall[bucket]
                steps[bucket] = Step(0.0, 0.0, level, (neg + weight * ref.baseline) / (tot + weight), ref.factor)
            if w:  # update_count(0.0): the value moved at most ``bound`` from the level
                deviation = d / w
                bound = clip * (deviation if deviation > 1.0 else 1.0)
                low = level - bound
                value = low if 0.0 < low else (level + bound if 0.0 > level + bound else 0.0)
                d = decay * d + abs(value - level)
                x = decay * x + value
            else:  # the first bucket: level and value 0.0
                d = decay * d + 0.0
                x = decay * x + 0.0
            w = decay * w + 1.0
            neg = decay * neg + 0.0
            tot = decay * tot + 0.0
        self._w, self._x, self._d, self._neg, self._tot = w, x, d, neg, tot
        self.buckets += max(hi - lo + 1, 0)


class Seasonality:
    """Per bucket, how much busier than usual its hour is, learned from the overall volume before it."""

    def __init__(self, s: DetectSettings) -> None:
        self.minutes = s.bucket_minutes
        self.base: SeasonalBaseline | None = None
        if s.seasonality:
            per_week = 7 * 24 * 60 / s.bucket_minutes
            self.base = SeasonalBaseline(
                RobustLevel(s.halflife_buckets, per_week, s.clip_mads, spread=0.5, min_spread=0.05),
                SlotProfile(1.0 - (1.0 - s.season_rate_per_hour) ** (s.bucket_minutes / 60.0),
                            timedelta(days=s.weekly_after_days), timedelta(days=s.daily_after_days)),
            )

    def next(self, bucket: int, total: float) -> float:
        """The factor of ``bucket`` (from the buckets before it); then learn its ``total``."""
        if self.base is None:
            return 1.0
        when = bucket_start(bucket, self.minutes)
        factor = min(max(math.exp(self.base.profile.offset(when)), _FACTOR_RANGE[0]), _FACTOR_RANGE[1])
        self.base.learn(when, math.log1p(total))
        return factor
