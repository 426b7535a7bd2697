"""What the dashboard shows, computed from any :class:`~alerting.index.base.Index` backend.

Everything here goes through the index Protocol (``query``, ``bucket_counts``, ``alerts``), so the
same page works over the embedded SQLite index and over Elasticsearch. Times are UTC; a range is
half-open, ``[start, end)``, like the index's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerting.index.base import Index, Scope
from alerting.views import alert_view, item_view
from finsentinel.errors import ConfigError

BUCKET_CHOICES = (5, 15, 30, 60, 180, 360, 720, 1440, 10080)
"""Chart bucket widths in minutes; the narrowest that keeps a range within :data:`MAX_BUCKETS`
(past the widest, whole multiples of it)."""
MAX_BUCKETS = 240
DEFAULT_DAYS = 7
MAX_ITEMS = 500


@dataclass(frozen=True, slots=True)
class Range:
    """A time range of the dashboard and the chart bucket width that fits it."""

    start: datetime
    end: datetime
    bucket_minutes: int

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "bucket_minutes": self.bucket_minutes}


def bucket_for(span: timedelta) -> int:
    """The narrowest of :data:`BUCKET_CHOICES` that cuts ``span`` into at most :data:`MAX_BUCKETS` buckets;
    for a longer span, the least multiple of the widest that does (years of range stay a few hundred bars)."""
    minutes = span.total_seconds() / 60
    for width in BUCKET_CHOICES:
        if minutes / width <= MAX_BUCKETS:
            return width
    return BUCKET_CHOICES[-1] * math.ceil(minutes / BUCKET_CHOICES[-1] / MAX_BUCKETS)


def _floor(t: datetime, minutes: int) -> datetime:
    step = minutes * 60
    return datetime.fromtimestamp(math.floor(t.timestamp() / step) * step, UTC)


def _ceil(t: datetime, minutes: int) -> datetime:
    step = minutes * 60
    return datetime.fromtimestamp(math.ceil(t.timestamp() / step) * step, UTC)


def resolve_range(index: Index, start: datetime | None, end: datetime | None) -> Range:
    """The range asked for, or at most :data:`DEFAULT_DAYS` days up to the newest item (or now).

    The default ends at the newest item rather than at the clock, so an index of past news (a
    backfill, the demo's) opens on its data, and starts on the first day of that span that holds
    items, so a short history fills the chart; a start after the newest item shows that day, empty.
    Bounds are widened to whole buckets.
    """
    open_end = end is None
    if end is None:
        newest = index.query(limit=1)
        end = newest[0].published_at + timedelta(seconds=1) if newest else datetime.now(UTC)
    try:
        if open_end and start is not None and end <= start:  # a start after the newest item: its day
            end = start + timedelta(days=1)
        if start is None:  # the default span, from the first day in it that has items
            start = _floor(end - timedelta(days=DEFAULT_DAYS), 1440)
            days = index.bucket_counts(start, end, 1440, "overall")
            start = days[0].start if days else start
        if end <= start:
            raise ConfigError(f"expected start before end, got start {start.isoformat()} and end {end.isoformat()}")
        width = bucket_for(end - start)
        return Range(_floor(start, width), _ceil(end, width), width)
    except (OverflowError, ValueError) as exc:  # a bound widened past year 1 or 9999
        raise ConfigError(
            f"the range from {start.isoformat() if start else 'its default start'} to {end.isoformat()} is out of "
            f"range ({exc}); expected times between years 1 and 9999"
        ) from None


def series(index: Index, rng: Range, scope: Scope, key: str | None) -> list[dict[str, Any]]:
    """Items and negatives per chart bucket for one key of ``scope`` (every bucket, zeros included)."""
    counts = {b.start: (b.total, b.negative, b.positive)
              for b in index.bucket_counts(rng.start, rng.end, rng.bucket_minutes, scope, key=key)}
    out: list[dict[str, Any]] = []
    t = rng.start
    step = timedelta(minutes=rng.bucket_minutes)
    while t < rng.end:
        total, negative, positive = counts.get(t, (0, 0, 0))
        out.append({"start": t.isoformat(), "total": total, "negative": negative, "positive": positive})
        t += step
    return out


def _shares(total: int, negative: int, positive: int) -> dict[str, Any]:
    """Counts and shares of one key or range; ``net`` is (positive - negative) / total, in [-1, 1]."""
    share = (lambda n: round(n / total, 3)) if total else (lambda n: 0.0)
    return {"total": total, "negative": negative, "positive": positive, "share": share(negative),
            "positive_share": share(positive), "net": share(positive - negative)}


def leaders(index: Index, rng: Range, scope: Scope, names: Mapping[str, str], limit: int) -> list[dict[str, Any]]:
    """Keys of ``scope`` in the range with their items, negatives and negative share, most negatives first."""
    # One bucket as wide as the range (aligned to the epoch, so it may split in two): per-key sums
    # for the price of one aggregation, however long the range.
    width = max(1, math.ceil((rng.end - rng.start).total_seconds() / 60))
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for b in index.bucket_counts(rng.start, rng.end, width, scope):
        if b.key is not None:
            for i, n in enumerate((b.total, b.negative, b.positive)):
                sums[b.key][i] += n
    top = sorted(sums.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))[:limit]
    return [{"key": k, "name": names.get(k, k), **_shares(t, n, p)} for k, (t, n, p) in top]


def overview(index: Index, rng: Range, names: Mapping[str, str], limit: int = 20) -> dict[str, Any]:
    """Everything the dashboard's first screen shows for a range."""
    chart = series(index, rng, "overall", None)
    sums = {name: sum(b[name] for b in chart) for name in ("total", "negative", "positive")}
    alerts = index.alerts(start=rng.start, end=rng.end, limit=None)  # all counted, ``limit`` listed
    totals = _shares(sums["total"], sums["negative"], sums["positive"])
    return {
        "range": rng.as_json(),
        "totals": {"items": totals.pop("total"), **totals,
                   "alerts": len(alerts), "open_alerts": sum(a.status != "resolved" for a in alerts)},
        "series": chart,
        "companies": leaders(index, rng, "entity", names, limit),
        "topics": leaders(index, rng, "topic", names, limit),
        "alerts": [alert_view(a, names) for a in alerts[:limit]],
    }


def items(index: Index, rng: Range, names: Mapping[str, str], limit: int, **filters: Any) -> list[dict[str, Any]]:
    """The newest items of the range that match ``filters`` (entity, topic, sentiment, text)."""
    found = index.query(start=rng.start, end=rng.end, limit=min(limit, MAX_ITEMS), **filters)
    return [item_view(i, names) for i in found]
