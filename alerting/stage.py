"""The alerting stage: index scored items from the bus, and run detection over the index.

The index handler is a :data:`finsentinel.worker.BatchHandler`: it decodes a batch, writes
every valid item in one upsert and only then returns, so the worker commits the consumed
offsets after the write. A record that is not a valid ScoredItem goes to the dead-letter
topic with the reason; an index failure raises, and the worker retries the batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from alerting.detect import detect
from alerting.index.base import Index
from finsentinel.bus.base import Record
from finsentinel.errors import SchemaError
from finsentinel.metrics import ALERTS
from finsentinel.schema import Alert, ScoredItem
from finsentinel.settings import DetectSettings
from finsentinel.worker import BatchHandler, Outcome

log = logging.getLogger(__name__)


def make_index_handler(index: Index) -> BatchHandler:
    """A batch handler that upserts the ScoredItems of a batch into ``index`` in one write."""

    def handle(records: Sequence[Record]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        items: list[ScoredItem] = []
        for record in records:
            try:
                items.append(ScoredItem.from_json(record.value))
            except SchemaError as exc:
                outcomes.append(Outcome.failed(str(exc)))
                continue
            outcomes.append(Outcome())
        if items:
            written = index.upsert(items)
            log.debug("indexed %d items (%d records)", written, len(records))
        return outcomes

    return handle


def history_span(settings: DetectSettings) -> timedelta:
    """How much history before a detection window the baseline needs (warm-up, three half-lives)."""
    buckets = max(settings.warmup_buckets, math.ceil(3 * settings.halflife_buckets)) + settings.window_buckets
    return timedelta(minutes=settings.bucket_minutes * buckets)


def run_detection(
    index: Index, settings: DetectSettings, start: datetime | None = None, end: datetime | None = None
) -> list[Alert]:
    """Detect over the indexed items in ``[start, end)``, upsert the alerts into the index, return them.

    Items from :func:`history_span` before ``start`` are read too, so that the baseline is
    learned as it would have been live; only alerts that end after ``start`` are returned.
    """
    since = start - history_span(settings) if start is not None else None
    items = index.query(start=since, end=end, limit=None)
    alerts = [a for a in detect(items, settings) if start is None or a.end > start]
    known = {a.id for a in index.alerts(start=start, end=end, limit=None)}
    index.upsert_alerts(alerts)
    new = [a for a in alerts if a.id not in known]
    for alert in new:
        ALERTS.labels(alert.scope).inc()  # counted once: a re-run updates known episodes
    log.info("detection over %d items: %d alerts, %d new", len(items), len(alerts), len(new))
    return alerts
