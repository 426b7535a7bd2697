"""The alerting stage: index scored items from the bus, and run detection over the index.

The index handler is a :data:`finsentinel.worker.BatchHandler`: it decodes a batch, writes
every valid item in one upsert and only then returns, so the worker commits the consumed
offsets after the write. A record that is not a valid ScoredItem goes to the dead-letter
topic with the reason, and so does an item the index refuses for good (:class:`BulkItemsError`);
any other index failure raises, and the worker retries the batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from alerting.detect import ItemDetector, detect_items
from alerting.index.base import BulkItemsError, Index
from finsentinel.bus.base import Record
from finsentinel.errors import SchemaError
from finsentinel.metrics import ALERTS, DETECT_LATE, DETECT_WAITING, DETECT_WATERMARK
from finsentinel.schema import Alert, ScoredItem
from finsentinel.settings import DetectSettings
from finsentinel.worker import BatchHandler, Outcome

log = logging.getLogger(__name__)


def _non_finite(item: ScoredItem) -> list[str]:
    """The scores of ``item`` that are NaN or infinite.

    ``from_json`` accepts the NaN and Infinity that Python's ``json.dumps`` writes, but stored as
    JSON they become null, and the stored item would no longer parse: every query over it would fail.
    """
    return [f"{name}.{label}" for name, scores in (("topic_scores", item.topic_scores),
                                                   ("sentiment_scores", item.sentiment_scores))
            for label, value in scores.items() if not math.isfinite(value)]


def make_index_handler(index: Index) -> BatchHandler:
    """A batch handler that upserts the ScoredItems of a batch into ``index`` in one write."""

    def handle(records: Sequence[Record]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        items: list[ScoredItem | None] = []
        for record in records:
            try:
                item = ScoredItem.from_json(record.value)
            except SchemaError as exc:
                items.append(None)
                outcomes.append(Outcome.failed(str(exc)))
                continue
            if bad := _non_finite(item):
                items.append(None)
                outcomes.append(Outcome.failed(
                    f"not a valid ScoredItem: {', '.join(bad)}: expected finite numbers, got NaN or infinity"
                ))
                continue
            items.append(item)
            outcomes.append(Outcome())
        valid = [i for i in items if i is not None]
        if not valid:
            return outcomes
        try:
            written = index.upsert(valid)
        except BulkItemsError as exc:  # the rest is written; dead-letter exactly the refused items
            log.warning("index refused %d items; they go to the dead-letter topic", len(exc.failed))
            return [
                Outcome.failed(f"index refused the item: {exc.failed[item.id]}")
                if item is not None and item.id in exc.failed else outcome
                for item, outcome in zip(items, outcomes, strict=True)
            ]
        log.debug("indexed %d items (%d records)", written, len(records))
        return outcomes

    return handle


def history_span(settings: DetectSettings) -> timedelta:
    """How much history before a detection window the baseline needs.

    The warm-up and three half-lives of the level; with seasonality, also the history the
    hour-of-week profile waits for plus a week to learn it.
    """
    buckets = max(settings.warmup_buckets, math.ceil(3 * settings.halflife_buckets)) + settings.window_buckets
    span = timedelta(minutes=settings.bucket_minutes * buckets)
    if settings.seasonality:
        span = max(span, timedelta(days=settings.weekly_after_days + 7))
    return span


def run_detection(
    index: Index, settings: DetectSettings, start: datetime | None = None, end: datetime | None = None,
    now: datetime | None = None,
) -> list[Alert]:
    """Detect over the indexed items in ``[start, end)``, upsert the alerts into the index, return them.

    A live run passes ``now``, the current time, so that an arrival of items still within its
    lateness is left for a later run (:func:`alerting.detect.detect_items`); None: a backfill.

    Items from :func:`history_span` before ``start`` are read too, so that the baseline has warmed
    up by ``start``; only alerts that end after ``start`` are returned. The baseline is then close
    to, not the same as, that of a run over all history: with seasonality, the hour-of-week profile
    keeps learning for weeks after ``history_span``, so expected counts (and alerts near a
    threshold) can differ.
    """
    since = start - history_span(settings) if start is not None else None
    items = index.query(start=since, end=end, limit=None)
    result = detect_items(items, settings, now)
    alerts = [a for a in result.alerts if start is None or a.end > start]
    if result.late:
        log.info("%d items arrived after their bucket was judged (late); indexed but not counted", result.late)
    known = {a.id for a in index.alerts(start=start, end=end, limit=None)}
    index.upsert_alerts(alerts)
    new = [a for a in alerts if a.id not in known]
    for alert in new:
        ALERTS.labels(alert.scope).inc()  # counted once: a re-run updates known episodes
    log.info("detection over %d items: %d alerts, %d new; %d items in buckets still open",
             len(items), len(alerts), len(new), result.open_items)
    return alerts


class LiveDetection:
    """Detection that resumes where its last run stopped, for the alert worker.

    The first run reads the whole index; each later one reads only the items fetched after the
    last arrival it judged (and those of ``settle_minutes`` before, or of the lateness if longer, so
    that an item indexed a little late is counted as late rather than never seen), and judges the buckets closed since: a run costs
    what is new, and the alerts are those one :func:`run_detection` over everything gives. An
    arrival is judged once the index holds an item fetched after its end (so a classify or index
    backlog delays alerts instead of making its items late), or once ``settle_minutes`` have
    passed since its end with nothing newer indexed (a quiet feed, not a backlog).
    """

    def __init__(self, index: Index, settings: DetectSettings, page: int = 5000,
                 stored: Sequence[Alert] | None = None) -> None:
        self.index, self.settings = index, settings
        self.settle = timedelta(minutes=settings.settle_minutes)
        # re-read items this far before the last arrival judged: one the index got late counts as late
        self.margin = max(self.settle, timedelta(minutes=settings.bucket_minutes * settings.lateness_buckets))
        self.detector = ItemDetector(settings)
        self.newest: datetime | None = None
        """The newest fetch time seen in the index."""
        self.page = page
        self._known: dict[str, Alert] | None = None if stored is None else {a.id: a for a in stored}
        """The alerts as stored in the index (read on the first run unless ``stored`` gives them)."""

    def run(self, now: datetime) -> list[Alert]:
        """Feed what was indexed since the last run; store and return the alerts new or changed since."""
        late = self.detector.late
        read = self._feed_new(now)
        changed = self._store(self.detector.detection().alerts)
        DETECT_LATE.inc(self.detector.late - late)
        DETECT_WAITING.set(self.detector.open_items)
        if (watermark := self.detector.watermark.watermark) is not None:
            DETECT_WATERMARK.set(watermark.timestamp())
        # every 30 s while busy: at INFO only when something changed
        log.log(logging.INFO if changed or self.detector.late > late else logging.DEBUG,
                "detection read %d items (%d late, %d waiting): %d alerts new or changed",
                read, self.detector.late - late, self.detector.open_items, len(changed))
        return changed

    @property
    def waiting(self) -> bool:
        """Whether an arrival was left open: a later run judges it even if nothing new is indexed."""
        return self.detector.pending > 0

    def _feed_new(self, now: datetime) -> int:
        """Feed the items fetched since the last arrival judged, in pages of ``page`` by fetch time
        (a restart over a long history holds one page at a time; a page that ends inside an arrival
        leaves it for the next); return how many items were read."""
        detector, read = self.detector, 0
        since = detector.watermark.horizon
        after = None if since is None else since - self.margin  # and the items the index got late
        while True:
            items = self.index.query(fetched_after=after, limit=self.page, order="fetched")
            read += len(items)
            if items:
                self.newest = items[-1].fetched_at if self.newest is None else max(self.newest, items[-1].fetched_at)
            complete = now if self.newest is None else min(now, max(self.newest, now - self.settle))
            full = len(items) == self.page
            horizon = detector.watermark.horizon
            detector.feed(items, min(complete, items[-1].fetched_at) if full else complete)
            if not full:
                break
            if detector.watermark.horizon == horizon:  # one arrival fills the page: read it whole
                self.page *= 2
            after = detector.watermark.horizon
        if since is not None:
            detector.forget(since - self.margin)
        return read

    def _store(self, alerts: list[Alert]) -> list[Alert]:
        """Upsert the alerts that are new or changed since last stored; return them."""
        if self._known is None:
            self._known = {a.id: a for a in self.index.alerts(limit=None)}
        changed = [a for a in alerts if self._known.get(a.id) != a]
        self.index.upsert_alerts(changed)
        for alert in changed:
            if alert.id not in self._known:
                ALERTS.labels(alert.scope).inc()  # counted once: later runs update known episodes
            self._known[alert.id] = alert
        return changed
