"""Seasonal, robust baselines: what a bucket is expected to hold, learned from the buckets before it.

Two pieces, shared by the count-series detector (:mod:`alerting.detect.series`) and the
negative-sentiment detector (:mod:`alerting.detect.sentiment`):

* :class:`SlotProfile` learns how each hour of the week (and, until a week of history exists,
  each hour of the day) differs from the series' level. Profiles switch on only once enough
  history exists (``weekly_after`` / ``daily_after``): before that every hour is treated alike,
  so a new series neither alerts on nor learns from half-seen patterns.
* :class:`RobustLevel` is an exponentially weighted level with an exponentially weighted mean
  absolute deviation (a MAD-like spread). Each update is clipped to ``clip`` spreads from the
  level, so one burst moves the baseline a little, never teaches it that bursts are normal.

Hand-written (about a hundred lines) because the libraries that do seasonal decomposition
(statsmodels' STL, Prophet) fit whole series offline, while detection here must be online:
each bucket is judged only by what came before it, and in one pass.
"""

from __future__ import annotations

from datetime import datetime, timedelta

_HOURS_PER_WEEK = 168
_HOURS_PER_DAY = 24


def hour_of_week(when: datetime) -> int:
    """0 for Monday 00:00-00:59 up to 167 for Sunday 23:00-23:59 (in the time's own zone)."""
    return when.weekday() * _HOURS_PER_DAY + when.hour


class SlotProfile:
    """Additive hour-of-day and hour-of-week profiles of a residual, learned online.

    The hour-of-day profile applies after ``daily_after`` of history; the hour-of-week profile
    is learned as a correction on top of it (what a Monday 9 a.m. adds to any 9 a.m.) and applies
    after ``weekly_after``. Unseen slots start at 0 (no seasonality) and move towards what they
    see at ``rate`` per bucket (the weekly correction, which sees a seventh as many buckets,
    at twice that rate), so a profile never rests on one noisy observation.
    """

    def __init__(self, rate: float, weekly_after: timedelta, daily_after: timedelta) -> None:
        self.rate = rate
        self.weekly_after, self.daily_after = weekly_after, daily_after
        self.first: datetime | None = None
        self._weekly = [0.0] * _HOURS_PER_WEEK
        self._daily = [0.0] * _HOURS_PER_DAY

    def offset(self, when: datetime) -> float:
        """The learned offset of ``when``'s hour from the level (0 until enough history exists)."""
        if self.first is None:
            return 0.0
        age = when - self.first
        offset = self._daily[when.hour] if age >= self.daily_after else 0.0
        if age >= self.weekly_after:
            offset += self._weekly[hour_of_week(when)]
        return offset

    def learn(self, when: datetime, residual: float) -> None:
        """Learn that ``when``'s bucket sat ``residual`` above the level (clip it first)."""
        if self.first is None:
            self.first = when
        slot = hour_of_week(when)
        self._weekly[slot] += min(2.0 * self.rate, 1.0) * (residual - self._daily[when.hour] - self._weekly[slot])
        self._daily[when.hour] += self.rate * (residual - self._daily[when.hour])


class RobustLevel:
    """Exponentially weighted level and mean absolute deviation with clipped updates."""

    def __init__(self, halflife: float, spread_halflife: float, clip: float, spread: float,
                 min_spread: float, prior_weight: float = 12.0) -> None:
        self.keep = 0.5 ** (1.0 / halflife)
        self.spread_keep = 0.5 ** (1.0 / spread_halflife)
        self.clip = clip
        self.level: float | None = None
        self.prior_spread, self.prior_weight = spread, prior_weight
        self.min_spread = min_spread
        self.updates = 0
        self._dev = self._weight = 0.0  # decayed sums of absolute deviations and of weights

    @property
    def spread(self) -> float:
        """Weighted mean absolute deviation, shrunk towards the prior spread; at least ``min_spread``.

        A weighted mean (not a bare exponential average started at the prior) forgets the prior
        as fast as data arrive, so a new series is judged by its own noise after a few dozen buckets.
        """
        mean = (self._dev + self.prior_weight * self.prior_spread) / (self._weight + self.prior_weight)
        return max(mean, self.min_spread)

    def clipped(self, residual: float) -> float:
        """``residual`` limited to ``clip`` spreads either way: what the baseline may learn from it."""
        bound = self.clip * self.spread
        return min(max(residual, -bound), bound)

    def update(self, residual: float) -> float:
        """Learn a bucket that sat ``residual`` above the level; return the clipped residual learned."""
        learned = self.clipped(residual)
        if self.level is not None:
            self.level += (1.0 - self.keep) * learned
        self._dev = self.spread_keep * self._dev + abs(learned)
        self._weight = self.spread_keep * self._weight + 1.0
        self.updates += 1
        return learned

    def start(self, value: float) -> None:
        """Set the level to the first value seen."""
        self.level = value
        self.updates += 1


class SeasonalBaseline:
    """A robust level plus hour-of-week / hour-of-day profiles, on whatever scale values come in.

    ``expect(when)`` gives the expected value and the spread; ``learn(when, value)`` then
    updates both with the clipped residual (call it after judging the bucket).
    """

    def __init__(self, level: RobustLevel, profile: SlotProfile) -> None:
        self.robust, self.profile = level, profile

    @property
    def buckets(self) -> int:
        """How many buckets have been learned."""
        return self.robust.updates

    def expect(self, when: datetime) -> tuple[float, float]:
        """Expected value at ``when`` and the spread around it (level is 0 before any data)."""
        return (self.robust.level or 0.0) + self.profile.offset(when), self.robust.spread

    def learn(self, when: datetime, value: float) -> None:
        """Learn one bucket's value (clipped, so bursts teach the baseline little)."""
        if self.robust.level is None:
            self.robust.start(value)
            self.profile.learn(when, 0.0)
            return
        offset = self.profile.offset(when)
        learned = self.robust.update(value - self.robust.level - offset)
        self.profile.learn(when, offset + learned)
