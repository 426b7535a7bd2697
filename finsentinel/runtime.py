"""Wiring: build each stage's worker from settings. The stage logic lives in its package.

These functions are what ``finsentinel ingest|classify|alert`` run; each returns the
counters of its run as a plain dict for the CLI to print.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from finsentinel.bus import Bus, make_bus
from finsentinel.errors import ConfigError
from finsentinel.schema import Alert
from finsentinel.settings import Settings
from finsentinel.worker import StageWorker, tune_gc

log = logging.getLogger(__name__)

CLASSIFY_GROUP = "finsentinel-classify"
ALERT_GROUP = "finsentinel-alert"


def _bus(settings: Settings) -> Bus:
    bus = make_bus(settings.bus)
    topics = settings.bus.topics
    names = [topics.raw, topics.scored, topics.alerts]
    bus.ensure_topics(names + [n + ".dlq" for n in names])
    return bus


def run_ingest(settings: Settings, once: bool, demo_sources: bool, stop: threading.Event) -> dict[str, Any]:
    """Ingest every configured source (and/or the bundled demo feeds) into the raw topic."""
    from ingest.worker import IngestWorker
    from ingest.worker import demo_sources as bundled

    ingest_settings = settings.ingest
    if demo_sources:
        ingest_settings = ingest_settings.model_copy(update={"sources": [*ingest_settings.sources, *bundled()]})
    if not ingest_settings.sources:
        raise ConfigError(
            "no ingest sources: add ingest.sources to the settings file (see finsentinel.example.yaml), "
            "or pass --demo-sources to read the bundled demo feeds"
        )
    bus = _bus(settings)
    try:
        worker = IngestWorker(ingest_settings, bus, settings.bus.topics.raw)
    except BaseException:
        bus.close()
        raise
    try:
        worker.warm()
        tune_gc()
        if once:
            return asdict(worker.run_once())
        worker.run_forever(stop)
        return {"stopped": True}
    finally:
        worker.close()
        bus.close()


def build_classify_worker(settings: Settings, bus: Bus) -> StageWorker:
    """The classify stage over ``bus``: raw items in, scored items out. Loads the models now.

    Items go to the model of their language (``nlp.models``, or the reference models when present),
    others to ``nlp.model_dir``; every model runs on ``nlp.backend`` through the batching engine.
    """
    from nlp.linking import EntityLinker, Watchlist
    from nlp.serving import load_router
    from nlp.stage import make_classify_handler

    nlp = settings.nlp
    # fails now, with one clear line, if a model directory is missing, corrupt or not exported
    router = load_router(nlp)
    for classifier in router.classifiers():
        log.info("classify: model %s", classifier.version)
    linker = EntityLinker(Watchlist.load(nlp.watchlist))
    handler = make_classify_handler(router, linker, settings.bus.topics.scored)
    return StageWorker(bus, "classify", CLASSIFY_GROUP, [settings.bus.topics.raw], handler,
                       max_batch=max(nlp.batch_size, 1) * 4)


def run_classify(settings: Settings, stop: threading.Event, idle_exit_s: float | None) -> dict[str, Any]:
    """Run the classify worker until stopped (or idle for ``idle_exit_s``)."""
    bus = _bus(settings)
    try:
        stats = build_classify_worker(settings, bus).run(stop, idle_exit_s=idle_exit_s)
        return asdict(stats)
    finally:
        bus.close()


def publish_alerts(bus: Bus, topic: str, alerts: list[Alert], known: dict[str, Alert]) -> int:
    """Publish alerts that are new or changed since last seen (``known`` is updated)."""
    sent = 0
    for alert in alerts:
        previous = known.get(alert.id)
        if previous is None or previous.model_dump(exclude={"created_at"}) != alert.model_dump(exclude={"created_at"}):
            bus.publish(topic, alert.to_json(), key=alert.id.encode())
            known[alert.id] = alert
            sent += 1
    bus.flush()
    return sent


class _Detector:
    """Runs spike detection after indexing, at most every ``every_s`` while busy and once when idle,
    then every ``every_s`` while an arrival still waits (a quiet feed: judged without newer items).

    Each run resumes where the last stopped (:class:`alerting.stage.LiveDetection`); the first
    reads the whole index, so the next run waits at least ``COST_FACTOR`` times as long as the
    last one took, busy or idle: detection takes at most a fifth of the worker's time.
    """

    COST_FACTOR = 4.0

    def __init__(self, settings: Settings, bus: Bus, index: Any, every_s: float) -> None:
        from alerting.notify import build_notifier
        from alerting.stage import LiveDetection

        self.settings, self.bus, self.index, self.every_s = settings, bus, index, every_s
        stored = index.alerts(limit=None)
        self.notifier = build_notifier(settings.alerting.notify, bus, settings.bus.topics.alerts, index, known=stored)
        self.notifier.notify(stored)  # with a ledger: what a sink had not delivered when the worker stopped
        self.live = LiveDetection(index, settings.alerting.detect, stored=stored)
        self.published = 0
        self.took_s = 0.0
        """How long the last detection run took."""
        self._dirty = False
        self._waiting = False
        """The last run left an arrival open: a later run judges it even if nothing new is indexed."""
        self._last = time.monotonic()

    def __call__(self, consumed: int) -> None:
        self._dirty = self._dirty or consumed > 0
        wait = max(self.every_s if consumed or not self._dirty else 0.0, self.COST_FACTOR * self.took_s)
        if (self._dirty or self._waiting) and time.monotonic() - self._last >= wait:
            started = time.monotonic()
            alerts = self.live.run(datetime.now(UTC))
            self.published += self.notifier.notify(alerts)
            self._dirty, self._last = False, time.monotonic()
            self._waiting = self.live.waiting
            self.took_s = self._last - started
            if self.took_s > self.every_s / self.COST_FACTOR:
                log.warning("detection took %.1f s; the next run waits %.0f s", self.took_s,
                            self.COST_FACTOR * self.took_s)


def run_alert(settings: Settings, stop: threading.Event, idle_exit_s: float | None,
              detect_every_s: float = 30.0) -> dict[str, Any]:
    """Index scored items, run spike detection periodically and when idle, publish alerts."""
    from alerting.index import make_index
    from alerting.stage import make_index_handler

    bus = _bus(settings)
    index = make_index(settings.alerting.index)
    try:
        index.ensure()
        worker = StageWorker(bus, "index", ALERT_GROUP, [settings.bus.topics.scored], make_index_handler(index),
                             max_batch=500)
        detector = _Detector(settings, bus, index, detect_every_s)
        try:
            stats = worker.run(stop, idle_exit_s=idle_exit_s, tick=detector)
        finally:
            detector.notifier.close()
        return {**asdict(stats), "alerts_published": detector.published}
    finally:
        index.close()
        bus.close()
