"""StageWorker: dead-lettering, commit-after-flush, redelivery after failures, run/stop/idle exit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from finsentinel.bus.base import Headers, Record, dlq_topic
from finsentinel.bus.local import LocalBus, LocalConsumer
from finsentinel.errors import BusError, FinSentinelError, IndexStoreError
from finsentinel.worker import BatchHandler, Outcome, Output, StageWorker, dead_letter
from tests.contract.bus import drain, unique, values


class SpyConsumer:
    """Wraps a LocalConsumer, logging commits and closes into the bus's call log."""

    def __init__(self, inner: LocalConsumer, log: list[str], close_error: BusError | None) -> None:
        self.inner, self.log, self.close_error = inner, log, close_error

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        return self.inner.poll(max_records, timeout_s)

    def commit(self) -> None:
        self.log.append("commit")
        self.inner.commit()

    def close(self) -> None:
        self.log.append("close")
        self.inner.close()
        if self.close_error is not None:
            raise self.close_error


class SpyBus:
    """A LocalBus that logs publish/flush/commit in order and can fail the next flushes."""

    def __init__(self, inner: LocalBus) -> None:
        self.inner = inner
        self.log: list[str] = []
        self.flush_failures = 0
        self.close_error: BusError | None = None

    def ensure_topics(self, topics: Sequence[str]) -> None:
        self.inner.ensure_topics(topics)

    def publish(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()) -> None:
        self.log.append(f"publish {topic}")
        self.inner.publish(topic, value, key, headers)

    def flush(self, timeout_s: float = 30.0) -> None:
        self.log.append("flush")
        if self.flush_failures:
            self.flush_failures -= 1
            raise BusError("flush refused (test)")
        self.inner.flush(timeout_s)

    def consumer(self, group: str, topics: Sequence[str]) -> SpyConsumer:
        return SpyConsumer(self.inner.consumer(group, topics), self.log, self.close_error)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[LocalBus]:
    local = LocalBus(tmp_path / "bus.sqlite3")
    yield local
    local.close()


def doubling(out_topic: str, seen: list[int] | None = None) -> BatchHandler:
    """A handler: integers in, doubled integers out, anything else dead-lettered."""

    def handle(records: Sequence[Record]) -> list[Outcome]:
        outcomes = []
        for r in records:
            if seen is not None:
                seen.append(r.offset)
            try:
                n = int(r.value)
            except ValueError:
                outcomes.append(Outcome.failed(f"not an integer: {r.value[:20]!r}"))
                continue
            outcomes.append(Outcome(outputs=(Output(out_topic, b"%d" % (2 * n), key=r.key),)))
        return outcomes

    return handle


def published(bus: LocalBus, topic: str) -> list[Record]:
    consumer = bus.consumer(unique("check"), [topic])
    try:
        return drain(consumer, 10**6, 0.2)
    finally:
        consumer.close()


def metric(name: str, stage: str) -> float:
    return REGISTRY.get_sample_value(name, {"stage": stage}) or 0.0


def test_step_publishes_outputs_dead_letters_bad_records_then_commits(bus: LocalBus) -> None:
    source, out, stage, group = unique("in"), unique("out"), unique("stage"), unique("g")
    for value in (b"1", b"x", b"2", b"3", b"\xff"):
        bus.publish(source, value, key=b"k", headers=(("trace", b"t"),))
    bus.flush()
    worker = StageWorker(bus, stage, group, [source], doubling(out), max_batch=10, poll_timeout_s=0.1)
    assert worker.step() == 5
    assert (worker.stats.consumed, worker.stats.published, worker.stats.dead_lettered) == (5, 3, 2)
    assert worker.stats.batches == 1 and worker.stats.failures == 0
    assert values(published(bus, out)) == [b"2", b"4", b"6"]
    dead = published(bus, dlq_topic(source))
    assert values(dead) == [b"x", b"\xff"]
    assert dead[0].header("x-error-reason") == b"not an integer: b'x'"
    assert dead[0].header("trace") == b"t" and dead[0].key == b"k"
    assert (dead[1].header("x-source-offset"), dead[1].header("x-source-partition")) == (b"4", b"0")
    assert metric("finsentinel_dead_letters_total", stage) == 2
    assert metric("finsentinel_records_in_total", stage) == 5
    assert metric("finsentinel_records_out_total", stage) == 3
    assert worker.step() == 0
    worker.close()
    assert bus.consumer(group, [source]).committed() == {source: 5}


def test_dead_letter_keeps_the_original_bytes_and_truncates_a_long_reason(bus: LocalBus) -> None:
    record = Record("news.raw", 2, 41, b"key", b"\x00raw\xff", (("h", b"v"),))
    dead_letter(bus, record, "股价" * 1000, "classify")
    bus.flush()
    (got,) = published(bus, "news.raw.dlq")
    assert (got.value, got.key, got.header("h")) == (b"\x00raw\xff", b"key", b"v")
    reason = got.header("x-error-reason") or b""
    assert reason.decode("utf-8") == "股价" * 333  # cut at 2,000 bytes, between characters
    assert got.header("x-error-stage") == b"classify"
    assert (got.header("x-source-topic"), got.header("x-source-partition"), got.header("x-source-offset")) == (
        b"news.raw", b"2", b"41")


def test_offsets_are_committed_only_after_the_outputs_are_flushed(bus: LocalBus) -> None:
    source, out, group = unique("in"), unique("out"), unique("g")
    for value in (b"1", b"2"):
        bus.publish(source, value)
    bus.flush()
    spy = SpyBus(bus)
    worker = StageWorker(spy, unique("stage"), group, [source], doubling(out), poll_timeout_s=0.1)
    assert worker.step() == 2
    assert spy.log == [f"publish {out}", f"publish {out}", "flush", "commit"]


def test_a_failed_flush_commits_nothing_and_the_next_run_redelivers(bus: LocalBus) -> None:
    source, out, group, stage = unique("in"), unique("out"), unique("g"), unique("stage")
    for value in (b"1", b"2", b"3"):
        bus.publish(source, value)
    bus.flush()
    spy = SpyBus(bus)
    spy.flush_failures = 1
    seen: list[int] = []
    worker = StageWorker(spy, stage, group, [source], doubling(out, seen), poll_timeout_s=0.1)
    with pytest.raises(BusError, match="flush refused"):
        worker.step()
    assert "commit" not in spy.log
    assert bus.consumer(group, [source]).committed() == {}
    stats = worker.run(threading.Event(), idle_exit_s=0.3)
    assert seen == [0, 1, 2, 0, 1, 2]
    assert (stats.consumed, stats.published, stats.batches) == (3, 3, 1)  # the failed try is not counted
    assert spy.log.count("commit") == 1
    assert bus.consumer(group, [source]).committed() == {source: 3}
    assert sorted(set(values(published(bus, out)))) == [b"2", b"4", b"6"]  # at least once


def test_run_retries_a_failing_batch_from_the_committed_position(bus: LocalBus) -> None:
    source, out, group, stage = unique("in"), unique("out"), unique("g"), unique("stage")
    for value in (b"1", b"2"):
        bus.publish(source, value)
    bus.flush()
    seen: list[int] = []
    inner = doubling(out, seen)
    attempts = {"n": 0}

    def flaky(records: Sequence[Record]) -> list[Outcome]:
        attempts["n"] += 1
        if attempts["n"] <= 2:
            seen.extend(r.offset for r in records)
            raise IndexStoreError("index down (test)")
        return inner(records)

    errors_before = metric("finsentinel_stage_errors_total", stage)
    worker = StageWorker(bus, stage, group, [source], flaky, poll_timeout_s=0.05, retry_backoff_s=0.02)
    stats = worker.run(threading.Event(), idle_exit_s=0.3)
    assert seen == [0, 1, 0, 1, 0, 1]
    assert (stats.failures, stats.consumed, stats.published) == (2, 2, 2)
    assert metric("finsentinel_stage_errors_total", stage) - errors_before == 2
    assert values(published(bus, out)) == [b"2", b"4"]


def test_a_failed_step_rejoins_from_the_committed_position(bus: LocalBus) -> None:
    source, out, group = unique("in"), unique("out"), unique("g")
    for value in (b"1", b"2"):
        bus.publish(source, value)
    bus.flush()
    spy = SpyBus(bus)
    spy.flush_failures = 1
    worker = StageWorker(spy, unique("stage"), group, [source], doubling(out), poll_timeout_s=0.1)
    with pytest.raises(BusError):
        worker.step()
    assert worker.step() == 2  # the same batch again, not skipped by a consumer that ran ahead
    assert bus.consumer(group, [source]).committed() == {source: 2}
    worker.close()


def test_tick_sees_every_step_and_its_errors_are_retried(bus: LocalBus) -> None:
    source, out = unique("in"), unique("out")
    for value in (b"1", b"2", b"3"):
        bus.publish(source, value)
    bus.flush()
    ticks: list[int] = []

    def tick(n: int) -> None:
        ticks.append(n)
        if len(ticks) == 1:
            raise IndexStoreError("detector failed (test)")

    worker = StageWorker(bus, unique("stage"), unique("g"), [source], doubling(out), max_batch=2,
                         poll_timeout_s=0.05, retry_backoff_s=0.01)
    stats = worker.run(threading.Event(), idle_exit_s=0.2, tick=tick)
    assert ticks[:2] == [2, 1] and set(ticks[2:]) == {0}
    assert (stats.failures, stats.consumed) == (1, 3)


def test_a_handler_returning_the_wrong_number_of_outcomes_is_an_error(bus: LocalBus) -> None:
    source, group = unique("in"), unique("g")
    for value in (b"1", b"2"):
        bus.publish(source, value)
    bus.flush()
    worker = StageWorker(bus, "s", group, [source], lambda records: [Outcome()], poll_timeout_s=0.1)
    with pytest.raises(FinSentinelError, match="handler returned 1 outcomes for 2 records"):
        worker.step()
    assert bus.consumer(group, [source]).committed() == {}


def test_run_exits_once_idle_for_idle_exit_s(bus: LocalBus) -> None:
    source, out = unique("in"), unique("out")
    for value in (b"1", b"2", b"3"):
        bus.publish(source, value)
    bus.flush()
    worker = StageWorker(bus, unique("stage"), unique("g"), [source], doubling(out), max_batch=2,
                         poll_timeout_s=0.05)
    started = time.monotonic()
    stats = worker.run(threading.Event(), idle_exit_s=0.3)
    assert 0.3 <= time.monotonic() - started < 3
    assert (stats.consumed, stats.batches) == (3, 2)


def test_run_stops_when_the_stop_event_is_set_and_releases_its_consumer(bus: LocalBus) -> None:
    source, out, group = unique("in"), unique("out"), unique("g")
    bus.publish(source, b"1")
    bus.flush()
    worker = StageWorker(bus, unique("stage"), group, [source], doubling(out), poll_timeout_s=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while worker.stats.consumed < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stats.consumed == 1
    stop.set()
    thread.join(2)
    assert not thread.is_alive()
    # The worker left the group on exit: a new member gets new records at once, not after a lease.
    bus.publish(source, b"2")
    bus.flush()
    successor = bus.consumer(group, [source])
    assert values(successor.poll(10, 0.2)) == [b"2"]
    successor.close()


def test_a_stop_event_set_before_run_processes_nothing(bus: LocalBus) -> None:
    source = unique("in")
    bus.publish(source, b"1")
    bus.flush()
    stop = threading.Event()
    stop.set()
    stats = StageWorker(bus, "s", unique("g"), [source], doubling(unique("out"))).run(stop)
    assert stats.consumed == 0 and stats.batches == 0


def test_a_consumer_that_fails_to_close_does_not_crash_the_worker(bus: LocalBus) -> None:
    source = unique("in")
    bus.publish(source, b"1")
    bus.flush()
    spy = SpyBus(bus)
    spy.close_error = BusError("close refused (test)")
    worker = StageWorker(spy, "s", unique("g"), [source], doubling(unique("out")), poll_timeout_s=0.05)
    stats = worker.run(threading.Event(), idle_exit_s=0.1)
    assert stats.consumed == 1 and spy.log[-1] == "close"
