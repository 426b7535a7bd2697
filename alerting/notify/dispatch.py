"""Fan alerts out to every sink: one thread and queue per sink, retries with backoff, no blocking.

:meth:`Notifier.notify` compares each alert with the version it saw last and queues the new
and changed ones; it returns at once. Each sink's own thread delivers its queue in order,
retrying a failed delivery ``retries`` times with exponential backoff (``backoff_s``, doubling,
at most ``max_backoff_s``), then logs the failure and moves on. A slow or broken sink therefore
delays only itself; if its queue fills up, new alerts for it are dropped and counted (and
logged), never blocking the detector or the other sinks.

Machine sinks (topic, index) receive every change; human sinks (log, webhook, e-mail) only the
moments that matter: a new alert, a rise in severity or status (escalated), and its resolution,
from ``min_severity`` up.

With a :class:`~alerting.notify.ledger.DeliveryLedger`, each sink's deliveries are recorded as they
succeed, and a restarted notifier starts each sink from what that sink delivered: an alert queued
but not delivered when the process stopped (or given up on, or dropped from a full queue) is sent
again after a restart, once the index's alerts are passed to :meth:`Notifier.notify`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from alerting.notify.base import Sink
from alerting.notify.ledger import DeliveryLedger
from finsentinel.schema import Alert

log = logging.getLogger(__name__)

_RANK = {"warning": 0, "high": 1, "critical": 2}
_STOP = None


@dataclass
class SinkStats:
    """Deliveries of one sink."""

    sent: int = 0
    failed: int = 0
    retries: int = 0
    dropped: int = 0


def is_transition(alert: Alert, previous: Alert | None) -> bool:
    """A new alert, a change of severity, or a change of status (escalated, resolved)."""
    return previous is None or (previous.severity, previous.status) != (alert.severity, alert.status)


def _changed(alert: Alert, previous: Alert | None) -> bool:
    if previous is None:
        return True
    return previous.model_dump(exclude={"created_at"}) != alert.model_dump(exclude={"created_at"})


def ledger_key(sink: Sink) -> str:
    """The sink's name in the delivery ledger: its ``ledger_key`` where its name is not unique
    (two webhooks on one host), else its name."""
    return str(getattr(sink, "ledger_key", sink.name))


class _Worker(threading.Thread):
    """Delivers one sink's queue, retrying with backoff; records each delivery in the ledger."""

    def __init__(self, sink: Sink, retries: int, backoff_s: float, max_backoff_s: float, size: int,
                 ledger: DeliveryLedger | None) -> None:
        super().__init__(name=f"notify-{sink.name}", daemon=True)
        self.sink, self.retries, self.ledger = sink, retries, ledger
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.queue: queue.Queue[Alert | None] = queue.Queue(maxsize=size)
        self.stats = SinkStats()
        self.stopping = threading.Event()
        self.seen: dict[str, Alert] = {}
        """The last version of each alert this sink was offered (or, after a restart, delivered)."""

    def offer(self, alert: Alert) -> bool:
        try:
            self.queue.put_nowait(alert)
        except queue.Full:
            self.stats.dropped += 1
            log.error("sink %s is %d alerts behind; dropped alert %s", self.sink.name, self.queue.qsize(), alert.id)
            return False
        return True

    def run(self) -> None:
        while True:
            alert = self.queue.get()
            try:
                if alert is _STOP:
                    return
                self._deliver(alert)
            finally:
                self.queue.task_done()

    def _deliver(self, alert: Alert) -> None:
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                self.sink.send(alert)
            except Exception as exc:  # noqa: BLE001 - any failure of a sink is retried, then logged
                if attempt == self.retries or self.stopping.is_set():
                    self.stats.failed += 1
                    log.error("sink %s failed to deliver alert %s after %d attempts: %s",
                              self.sink.name, alert.id, attempt + 1, exc)
                    return
                self.stats.retries += 1
                log.warning("sink %s: attempt %d for alert %s failed (%s); retrying in %.1fs",
                            self.sink.name, attempt + 1, alert.id, exc, delay)
                if self.stopping.wait(delay):
                    delay = 0.0  # closing: one last immediate try
                delay = min(delay * 2, self.max_backoff_s)
            else:
                self.stats.sent += 1
                self._record(alert)
                return

    def _record(self, alert: Alert) -> None:
        if self.ledger is None:
            return
        try:
            self.ledger.record([ledger_key(self.sink)], [alert])
        except Exception as exc:  # noqa: BLE001 - delivered all the same; at worst it is sent again after a restart
            log.error("sink %s delivered alert %s but the ledger could not record it: %s", self.sink.name, alert.id, exc)


class Notifier:
    """Sends new and changed alerts to every sink without letting one sink hold up another.

    ``known``: alerts delivered before (not sent again). With a ``ledger``, each sink starts from
    the alerts the ledger says it delivered instead, and ``known`` only seeds a ledger that does not
    exist yet, or a sink new to it (so that neither a first ledger nor a webhook added later re-sends
    every stored alert).
    """

    def __init__(self, sinks: Sequence[Sink], retries: int = 3, backoff_s: float = 1.0, max_backoff_s: float = 30.0,
                 queue_size: int = 1000, min_severity: str = "warning", known: Sequence[Alert] = (),
                 ledger: DeliveryLedger | None = None) -> None:
        self.min_rank = _RANK[min_severity]
        self.known: dict[str, Alert] = {a.id: a for a in known}
        self.ledger = ledger
        self._workers = [_Worker(s, retries, backoff_s, max_backoff_s, queue_size, ledger) for s in sinks]
        if ledger is not None:  # a new ledger, or a sink new to it, starts from the stored alerts
            fresh = not ledger.exists()
            have = set() if fresh else ledger.sinks()
            new = [key for key in map(ledger_key, sinks) if key not in have]
            if fresh or new:
                ledger.record(new, known)
        for worker in self._workers:
            worker.seen = ledger.delivered(ledger_key(worker.sink)) if ledger is not None else dict(self.known)
            worker.start()

    @property
    def stats(self) -> dict[str, SinkStats]:
        """Per sink name: sent, failed, retried, dropped."""
        return {w.sink.name: w.stats for w in self._workers}

    def notify(self, alerts: Sequence[Alert]) -> int:
        """Queue, for each sink, the alerts new or changed since that sink last saw them; return how
        many alerts are new or changed since this notifier (or ``known``) last saw them."""
        changed = 0
        for alert in alerts:
            for worker in self._workers:
                self._offer(worker, alert)
            if _changed(alert, self.known.get(alert.id)):
                changed += 1
                self.known[alert.id] = alert
        return changed

    def _offer(self, worker: _Worker, alert: Alert) -> None:
        previous = worker.seen.get(alert.id)
        if not _changed(alert, previous):
            return
        transition = is_transition(alert, previous) and _RANK[alert.severity] >= self.min_rank
        if transition or not worker.sink.transitions_only:
            worker.offer(alert)
        worker.seen[alert.id] = alert

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queue is delivered (or given up on); False if ``timeout_s`` passed first."""
        done = threading.Event()

        def wait_all() -> None:
            for worker in self._workers:
                worker.queue.join()
            done.set()

        threading.Thread(target=wait_all, name="notify-flush", daemon=True).start()
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (retries cut short), stop the threads, close the sinks."""
        for worker in self._workers:
            worker.stopping.set()
            try:
                worker.queue.put(_STOP, timeout=timeout_s)
            except queue.Full:
                log.error("sink %s did not drain in %.0fs; %d alerts undelivered",
                          worker.sink.name, timeout_s, worker.queue.qsize())
        for worker in self._workers:
            worker.join(timeout_s)
            if worker.is_alive():
                log.error("sink %s is still busy after %.0fs; leaving it", worker.sink.name, timeout_s)
            worker.sink.close()
        if self.ledger is not None:
            self.ledger.close()
