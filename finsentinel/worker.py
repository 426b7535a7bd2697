"""The thin consume → process → publish → commit loop shared by every stage worker.

A stage supplies a pure-ish batch handler: records in, one :class:`Outcome` per record out.
A record the handler cannot use (bad bytes, wrong schema) comes back with ``error`` set and
goes to the dead-letter topic with its original bytes and the reason. Offsets are committed
only after the outputs are flushed (and the handler's own writes returned), so a crash
re-delivers rather than loses; idempotent writes keyed by content ids absorb the repeats.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from finsentinel import metrics
from finsentinel.bus.base import Bus, Consumer, Record, dlq_topic
from finsentinel.errors import FinSentinelError

log = logging.getLogger(__name__)


def tune_gc() -> None:
    """Collect garbage less often in a long-running stage process.

    A stage keeps large, long-lived structures (dedup memory, near-dup index, batches) and allocates
    many short-lived objects per item; with the default gen-0 threshold (700 allocations) the
    collector runs thousands of times per pass and rescans them: about 8% of an ingest pass's CPU
    time, measured with ``finsentinel bench ingest``. Objects alive now (modules, models) are
    frozen out of collection. Call once, at process start-up, after loading.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


@dataclass(frozen=True, slots=True)
class Output:
    """One record to publish."""

    topic: str
    value: bytes
    key: bytes | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one consumed record: outputs, or an error that sends it to the DLQ."""

    outputs: tuple[Output, ...] = ()
    error: str | None = None

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls(error=reason)


BatchHandler = Callable[[Sequence[Record]], list[Outcome]]


@dataclass
class StageStats:
    """Counters of one worker run."""

    consumed: int = 0
    published: int = 0
    dead_lettered: int = 0
    batches: int = 0
    failures: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def dead_letter(bus: Bus, record: Record, reason: str, stage: str) -> None:
    """Publish the original bytes of ``record`` to its topic's DLQ, with the reason in headers."""
    headers = (
        *record.headers,
        ("x-error-reason", reason.encode("utf-8")[:2000].decode("utf-8", "ignore").encode("utf-8")),
        ("x-error-stage", stage.encode()),
        ("x-source-topic", record.topic.encode()),
        ("x-source-partition", str(record.partition).encode()),
        ("x-source-offset", str(record.offset).encode()),
    )
    bus.publish(dlq_topic(record.topic), record.value, key=record.key, headers=headers)


class StageWorker:
    """Runs one stage: consume a batch, handle it, publish, flush, commit; repeat until stopped."""

    def __init__(
        self,
        bus: Bus,
        stage: str,
        group: str,
        topics: Sequence[str],
        handler: BatchHandler,
        max_batch: int = 64,
        poll_timeout_s: float = 0.5,
        retry_backoff_s: float = 1.0,
    ) -> None:
        self.bus, self.stage, self.group, self.topics = bus, stage, group, list(topics)
        self.handler = handler
        self.max_batch, self.poll_timeout_s, self.retry_backoff_s = max_batch, poll_timeout_s, retry_backoff_s
        self.stats = StageStats()
        self._consumer: Consumer | None = None

    def _consumer_(self) -> Consumer:
        if self._consumer is None:
            self._consumer = self.bus.consumer(self.group, self.topics)
        return self._consumer

    def step(self) -> int:
        """Process one batch; return how many records it consumed (0 when idle).

        If handling, publishing, flushing or committing the batch raises, the consumer is
        closed before the error propagates, so the next step rejoins from the committed
        position and gets the batch again instead of skipping past it.
        """
        consumer = self._consumer_()
        records = consumer.poll(self.max_batch, self.poll_timeout_s)
        if not records:
            return 0
        try:
            self._process(consumer, records)
        except BaseException:
            self.close()
            raise
        return len(records)

    def _process(self, consumer: Consumer, records: list[Record]) -> None:
        started = time.perf_counter()
        outcomes = self.handler(records)
        if len(outcomes) != len(records):
            raise FinSentinelError(
                f"stage {self.stage}: handler returned {len(outcomes)} outcomes for {len(records)} records"
            )
        dead = published = 0
        for record, outcome in zip(records, outcomes, strict=True):
            if outcome.error is not None:
                log.warning(
                    "%s: dead-lettering %s@%d: %s", self.stage, record.topic, record.offset, outcome.error
                )
                dead_letter(self.bus, record, outcome.error, self.stage)
                dead += 1
            for out in outcome.outputs:
                self.bus.publish(out.topic, out.value, key=out.key)
                published += 1
        self.bus.flush()
        consumer.commit()
        # Counted once committed: a batch that fails and is redone is counted once, not twice.
        self.stats.consumed += len(records)
        self.stats.published += published
        self.stats.dead_lettered += dead
        self.stats.batches += 1
        metrics.DEAD_LETTERS.labels(self.stage).inc(dead)
        metrics.RECORDS_IN.labels(self.stage).inc(len(records))
        metrics.RECORDS_OUT.labels(self.stage).inc(published)
        metrics.BATCH_SECONDS.labels(self.stage).observe(time.perf_counter() - started)

    def close(self) -> None:
        """Leave the consumer group; the next step rejoins from the committed position."""
        if self._consumer is not None:
            try:
                self._consumer.close()
            except FinSentinelError:
                log.exception("%s: closing the consumer failed", self.stage)
            self._consumer = None

    def run(
        self,
        stop: threading.Event,
        idle_exit_s: float | None = None,
        tick: Callable[[int], None] | None = None,
    ) -> StageStats:
        """Loop until ``stop`` is set (or, with ``idle_exit_s``, until nothing came for that long).

        ``tick`` is called after every step with the number of records consumed (0 when idle),
        for periodic work such as spike detection; its errors are retried like a batch's.

        A failing batch (index down, bus hiccup) is not committed: the worker backs off,
        rejoins from the committed position and tries again, so nothing is lost.
        """
        idle_since = time.monotonic()
        backoff = self.retry_backoff_s
        try:
            while not stop.is_set():
                try:
                    n = self.step()
                    if tick is not None:
                        tick(n)
                    backoff = self.retry_backoff_s
                except FinSentinelError as exc:
                    self.stats.failures += 1
                    metrics.STAGE_ERRORS.labels(self.stage).inc()
                    log.error("%s: batch failed, will retry in %.1fs: %s", self.stage, backoff, exc)
                    self.close()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 60.0)
                    continue
                now = time.monotonic()
                if n:
                    idle_since = now
                elif idle_exit_s is not None and now - idle_since >= idle_exit_s:
                    break
        finally:
            self.close()
        return self.stats
