"""The seasonal, robust baseline shared by both detectors: profiles switch on with history, bursts are clipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerting.detect.seasonal import RobustLevel, SeasonalBaseline, SlotProfile, hour_of_week

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)


def test_hour_of_week_counts_from_monday_midnight() -> None:
    assert hour_of_week(MONDAY) == 0
    assert hour_of_week(MONDAY + 33 * HOUR) == 33
    assert hour_of_week(MONDAY + 6 * 24 * HOUR + 23 * HOUR) == 167


def _office(when: datetime) -> float:
    """Busy 9-17 every day (+1, else -1), and Monday 9 a.m. busier still (+2 more)."""
    busy = 9 <= when.hour < 17
    return (1.0 if busy else -1.0) + (2.0 if when.weekday() == 0 and when.hour == 9 else 0.0)


def test_profiles_switch_on_with_history_and_weekly_corrects_daily() -> None:
    profile = SlotProfile(rate=0.5, weekly_after=timedelta(days=7), daily_after=timedelta(days=2))
    for hour in range(27 * 24):  # Monday of week 1 to Saturday of week 4
        when = MONDAY + hour * HOUR
        profile.learn(when, _office(when))
        if hour < 47:
            assert profile.offset(when + HOUR) == 0.0  # too little history: every hour alike
    assert abs(profile.offset(MONDAY + timedelta(days=27, hours=9)) - 1.0) < 0.3  # any 9 a.m.
    for hour in range(27 * 24, 28 * 24):
        profile.learn(MONDAY + hour * HOUR, _office(MONDAY + hour * HOUR))
    assert abs(profile.offset(MONDAY + timedelta(days=28, hours=9)) - 3.0) < 0.3  # the weekly correction
    assert profile.offset(MONDAY + timedelta(days=28, hours=3)) < -0.7
    late_weekly = SlotProfile(rate=0.5, weekly_after=timedelta(days=14), daily_after=timedelta(days=2))
    for hour in range(7 * 24 + 9):
        late_weekly.learn(MONDAY + hour * HOUR, _office(MONDAY + hour * HOUR))
    assert late_weekly.offset(MONDAY + timedelta(days=7, hours=9)) < 1.5  # no weekly profile before 14 days


def test_robust_level_learns_the_noise_and_clips_bursts() -> None:
    level = RobustLevel(halflife=24, spread_halflife=168, clip=3.0, spread=1.0, min_spread=0.01)
    level.start(10.0)
    for k in range(200):
        level.update(0.1 if k % 2 else -0.1)
    assert 0.08 < level.spread < 0.2  # from the prior 1.0 to the data's own spread
    before, spread = level.level or 0.0, level.spread
    assert level.update(50.0) == 3.0 * spread  # what a burst may teach: three spreads
    assert (level.level or 0.0) - before < 0.1  # one burst barely moves the level


def test_seasonal_baseline_expects_the_level_plus_the_hour() -> None:
    base = SeasonalBaseline(RobustLevel(48, 168, 4.0, 0.5, 0.05),
                            SlotProfile(0.3, timedelta(days=7), timedelta(days=2)))
    assert base.expect(MONDAY) == (0.0, 0.5)
    for hour in range(10 * 24):
        when = MONDAY + hour * HOUR
        base.learn(when, 5.0 + (1.0 if when.hour == 12 else 0.0))
    noon, night = base.expect(MONDAY + timedelta(days=10, hours=12)), base.expect(MONDAY + timedelta(days=10, hours=2))
    assert noon[0] - night[0] > 0.7 and abs(night[0] - 5.0) < 0.2
    assert base.buckets == 240
