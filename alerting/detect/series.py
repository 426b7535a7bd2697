"""Spikes in a plain count series (one value per bucket): the detector scored on NAB.

Counts are judged on a log scale (``log1p``), where bursts of news are multiplicative: twice
the usual volume is as surprising at 3 a.m. as at noon. Each bucket's expected log count is a
:class:`~alerting.detect.seasonal.SeasonalBaseline` learned from the buckets before it: a
robust exponentially weighted level, hour-of-week (after a week of history) or hour-of-day
(after a few days) profiles, and a robust spread (mean absolute deviation). A bucket alerts
when its count is at least ``min_count`` and its robust z-score ``(log1p(x) - expected) /
spread`` reaches ``z_threshold``. Alerting buckets no more than ``cooldown_buckets`` apart
form one episode, reported once, at its first bucket.

The same seasonal baseline gives the sentiment detector its expected volume per hour.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerting.detect.seasonal import RobustLevel, SeasonalBaseline, SlotProfile
from finsentinel.errors import ConfigError, SchemaError
from finsentinel.settings import SeriesSettings

NAB_TIME = "%Y-%m-%d %H:%M:%S"


def seasonal_baseline(settings: SeriesSettings) -> SeasonalBaseline:
    """A fresh baseline configured by ``settings`` (log scale)."""
    level = RobustLevel(settings.halflife_buckets, settings.spread_halflife_buckets, settings.clip_mads,
                        spread=settings.initial_spread, min_spread=settings.min_spread)
    profile = SlotProfile(settings.season_rate, timedelta(days=settings.weekly_after_days),
                          timedelta(days=settings.daily_after_days))
    return SeasonalBaseline(level, profile)


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket of a series as the detector judged it."""

    at: datetime
    value: float
    expected: float
    """Expected count (back on the count scale)."""
    z: float
    """Robust z-score on the log scale; 0 during warm-up."""
    alert: bool


def score_series(timestamps: Sequence[datetime], values: Sequence[float], settings: SeriesSettings) -> list[Point]:
    """Judge every bucket of the series (sorted by time first) against the baseline before it."""
    if len(timestamps) != len(values):
        raise SchemaError(f"detect_series: expected as many values as timestamps, got {len(values)} "
                          f"values for {len(timestamps)} timestamps")
    base = seasonal_baseline(settings)
    points: list[Point] = []
    for when, value in sorted(zip(timestamps, values, strict=True), key=lambda tv: tv[0]):
        if not 0 <= value < math.inf:  # NaN and infinity too: an infinite level judges every later bucket normal
            raise SchemaError(f"detect_series: expected finite counts >= 0, got {value} at {when.isoformat()}")
        x = math.log1p(value)
        expected, spread = base.expect(when)
        z = (x - expected) / spread if base.buckets >= max(settings.warmup_buckets, 1) else 0.0
        alert = z >= settings.z_threshold and value >= settings.min_count
        points.append(Point(when, value, math.expm1(expected), z, alert))
        base.learn(when, x)
    return points


def episode_starts(points: Sequence[Point], cooldown: int) -> list[Point]:
    """The first alerting point of each episode (alerts no more than ``cooldown`` points apart)."""
    starts: list[Point] = []
    last = None
    for offset, point in enumerate(points):
        if not point.alert:
            continue
        if last is None or offset - last - 1 > cooldown:
            starts.append(point)
        last = offset
    return starts


def detect_series(timestamps: Sequence[datetime], values: Sequence[float], settings: SeriesSettings) -> list[datetime]:
    """Start times of the anomalous episodes of a count series, in time order."""
    return [p.at for p in episode_starts(score_series(timestamps, values, settings), settings.cooldown_buckets)]


def read_nab_csv(path: Path) -> tuple[list[str], list[datetime], list[float]]:
    """A NAB-format ``timestamp,value`` file: the timestamps as written, parsed (as UTC), and values."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets write a BOM
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ConfigError(f"cannot read the series file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{path}: expected UTF-8 text, got byte {exc.object[exc.start]:#04x} at byte "
                          f"{exc.start}; save the series as UTF-8 CSV") from exc
    if not rows or [c.strip() for c in rows[0][:2]] != ["timestamp", "value"]:
        raise SchemaError(f"{path}: expected a NAB series with the header 'timestamp,value', "
                          f"got {','.join(rows[0]) if rows else 'an empty file'!r}")
    if len(rows) < 2:
        raise SchemaError(f"{path}: expected rows of 'YYYY-MM-DD HH:MM:SS,number' after the header, got none")
    texts: list[str] = []
    times: list[datetime] = []
    values: list[float] = []
    for line, row in enumerate(rows[1:], start=2):
        try:
            text, value = row[0].strip(), float(row[1])
            when = datetime.strptime(text.split(".")[0], NAB_TIME).replace(tzinfo=UTC)
        except (IndexError, ValueError) as exc:
            raise SchemaError(f"{path}:{line}: expected 'YYYY-MM-DD HH:MM:SS,number', got {','.join(row)!r}") from exc
        texts.append(text)
        times.append(when)
        values.append(value)
    return texts, times, values
