"""The bus contract: every :class:`finsentinel.bus.base.Bus` backend passes these tests.

A backend's test module subclasses :class:`BusContract` and provides the ``new_bus``
fixture: a callable that returns a new bus instance connected to the same store or
cluster (so a record published by one instance can be read through another). Every test
uses its own uuid-named topics and groups, so the suite can run against a shared live
Kafka without cleaning up between runs.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence

import pytest

from finsentinel.bus.base import Bus, Consumer, Record, dlq_topic
from finsentinel.errors import BusError
from finsentinel.worker import Outcome, Output, StageWorker

NewBus = Callable[[], Bus]


def unique(prefix: str) -> str:
    """A topic or group name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def drain(
    consumer: Consumer,
    count: int,
    deadline_s: float,
    until: Callable[[Record], bool] | None = None,
    max_records: int = 500,
) -> list[Record]:
    """Poll until ``count`` records came (or one matching ``until``), or ``deadline_s`` passed."""
    out: list[Record] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        out.extend(consumer.poll(max_records, min(1.0, max(0.05, deadline - time.monotonic()))))
        if (until is not None and any(until(r) for r in out)) or (until is None and len(out) >= count):
            break
    return out


def publish_and_flush_on_another_thread(bus: Bus, topic: str, value: bytes) -> list[BaseException]:
    """Publish ``value`` and flush on a thread of its own (as the alert worker's notifier does);
    the BusErrors its flush raised."""
    errors: list[BaseException] = []

    def run() -> None:
        bus.publish(topic, value)
        try:
            bus.flush()
        except BusError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return errors


def values(records: Sequence[Record]) -> list[bytes]:
    return [r.value for r in records]


class BusContract:
    """Behaviour every bus backend guarantees. Subclasses provide ``new_bus``."""

    deadline_s: float = 30.0
    """How long a test waits for records it expects (a live Kafka group join takes seconds)."""

    @pytest.fixture
    def new_bus(self) -> NewBus:
        raise NotImplementedError("a backend's test class provides the new_bus fixture")

    @pytest.fixture
    def bus(self, new_bus: NewBus) -> Bus:
        return new_bus()

    def _publish(self, bus: Bus, topic: str, payloads: Sequence[bytes], key: bytes | None = None) -> None:
        for value in payloads:
            bus.publish(topic, value, key=key)
        bus.flush()

    def test_round_trip_keeps_value_key_and_headers(self, bus: Bus, new_bus: NewBus) -> None:
        topic = unique("rt")
        bus.ensure_topics([topic])
        bus.publish(topic, b"v0", key=b"k0", headers=(("a", b"1"), ("bin", b"\x00\xff")))
        bus.publish(topic, b"v1")
        bus.publish(topic, b"", key=b"k2")
        bus.flush()
        reader = new_bus()  # another instance: flushed records are durable, not held in memory
        consumer = reader.consumer(unique("g"), [topic])
        try:
            got = {r.value: r for r in drain(consumer, 3, self.deadline_s)}
        finally:
            consumer.close()
        assert set(got) == {b"v0", b"v1", b""}
        first = got[b"v0"]
        assert (first.topic, first.key, first.headers) == (topic, b"k0", (("a", b"1"), ("bin", b"\x00\xff")))
        assert first.header("bin") == b"\x00\xff" and first.header("missing") is None
        assert got[b"v1"].key is None and got[b"v1"].headers == ()
        assert got[b""].key == b"k2"
        assert all(r.offset >= 0 and r.timestamp_ms > 0 for r in got.values())
        assert len({(r.partition, r.offset) for r in got.values()}) == 3

    def test_records_with_the_same_key_arrive_in_publish_order(self, bus: Bus) -> None:
        topic = unique("order")
        bus.ensure_topics([topic])
        keys = [b"alpha", b"beta", b"gamma"]
        for i in range(60):
            key = keys[i % len(keys)]
            bus.publish(topic, b"%s:%03d" % (key, i), key=key)
        bus.flush()
        consumer = bus.consumer(unique("g"), [topic])
        try:
            got = drain(consumer, 60, self.deadline_s, max_records=7)
        finally:
            consumer.close()
        assert len(got) == 60
        for key in keys:
            seen = [r.value for r in got if r.key == key]
            assert seen == sorted(seen) and len(seen) == 20

    def test_records_polled_but_not_committed_are_delivered_again(self, bus: Bus) -> None:
        topic, group = unique("redeliver"), unique("g")
        bus.ensure_topics([topic])
        payloads = [b"r%d" % i for i in range(5)]
        self._publish(bus, topic, payloads)
        first = bus.consumer(group, [topic])
        assert sorted(values(drain(first, 5, self.deadline_s))) == payloads
        first.close()  # dies without committing
        second = bus.consumer(group, [topic])
        try:
            assert sorted(values(drain(second, 5, self.deadline_s))) == payloads
        finally:
            second.close()

    def test_committed_records_are_not_delivered_again(self, bus: Bus) -> None:
        topic, group = unique("committed"), unique("g")
        bus.ensure_topics([topic])
        self._publish(bus, topic, [b"c%d" % i for i in range(5)])
        first = bus.consumer(group, [topic])
        assert len(drain(first, 5, self.deadline_s)) == 5
        first.commit()
        first.close()
        self._publish(bus, topic, [b"marker"])
        second = bus.consumer(group, [topic])
        try:
            got = drain(second, 1, self.deadline_s, until=lambda r: r.value == b"marker")
        finally:
            second.close()
        assert values(got) == [b"marker"]

    def test_commit_covers_only_the_records_polled(self, bus: Bus) -> None:
        topic, group = unique("partial"), unique("g")
        bus.ensure_topics([topic])
        payloads = [b"p%d" % i for i in range(6)]
        self._publish(bus, topic, payloads)
        first = bus.consumer(group, [topic])
        taken = drain(first, 1, self.deadline_s, max_records=2)
        assert 1 <= len(taken) <= 2
        first.commit()
        first.close()
        second = bus.consumer(group, [topic])
        try:
            rest = drain(second, len(payloads) - len(taken), self.deadline_s)
        finally:
            second.close()
        assert sorted(values(taken) + values(rest)) == payloads

    def test_every_group_sees_every_record(self, bus: Bus) -> None:
        topic = unique("fanout")
        bus.ensure_topics([topic])
        payloads = [b"f%02d" % i for i in range(10)]
        self._publish(bus, topic, payloads, key=b"same")
        for group in (unique("g1"), unique("g2")):
            consumer = bus.consumer(group, [topic])
            try:
                assert values(drain(consumer, 10, self.deadline_s)) == payloads
                consumer.commit()
            finally:
                consumer.close()

    def test_poison_record_goes_to_the_dlq_while_the_rest_flow(self, bus: Bus) -> None:
        source, out = unique("in"), unique("out")
        bus.ensure_topics([source, dlq_topic(source), out])
        poison = b"\xff\xfe not json"
        for i, value in enumerate([b'{"n": 1}', b'{"n": 2}', poison, b'{"n": 3}', b'{"n": 4}']):
            bus.publish(source, value, key=b"k%d" % i, headers=(("trace", b"t%d" % i),))
        bus.flush()

        def handler(records: Sequence[Record]) -> list[Outcome]:
            outcomes = []
            for r in records:
                try:
                    n = json.loads(r.value)["n"]
                except (ValueError, KeyError, TypeError) as exc:
                    outcomes.append(Outcome.failed(f"cannot decode: {exc}"))
                    continue
                outcomes.append(Outcome(outputs=(Output(out, b"%d" % (n * 10), key=r.key),)))
            return outcomes

        worker = StageWorker(bus, "contract", unique("stage"), [source], handler,
                             max_batch=2, poll_timeout_s=0.2, retry_backoff_s=0.2)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        outputs, dead = bus.consumer(unique("o"), [out]), bus.consumer(unique("d"), [dlq_topic(source)])
        try:
            produced = drain(outputs, 4, self.deadline_s)
            dead_records = drain(dead, 1, self.deadline_s)
        finally:
            stop.set()
            thread.join(self.deadline_s)
            outputs.close()
            dead.close()
        assert not thread.is_alive()
        assert sorted(values(produced)) == [b"10", b"20", b"30", b"40"]
        assert len(dead_records) == 1
        record = dead_records[0]
        assert (record.value, record.key, record.header("trace")) == (poison, b"k2", b"t2")
        assert (record.header("x-error-reason") or b"").startswith(b"cannot decode")
        assert record.header("x-source-topic") == source.encode()
        assert record.header("x-error-stage") == b"contract"
        assert (worker.stats.consumed, worker.stats.published, worker.stats.dead_lettered) == (5, 4, 1)

    def test_ensure_topics_is_idempotent_and_keeps_records(self, bus: Bus) -> None:
        topic, other = unique("idem"), unique("idem")
        bus.ensure_topics([topic])
        bus.ensure_topics([topic])
        self._publish(bus, topic, [b"kept"])
        bus.ensure_topics([topic, other, other])
        bus.ensure_topics([])
        self._publish(bus, other, [b"other"])
        consumer = bus.consumer(unique("g"), [topic, other])
        try:
            assert sorted(values(drain(consumer, 2, self.deadline_s))) == [b"kept", b"other"]
        finally:
            consumer.close()

    def test_publish_rejects_values_that_are_not_bytes(self, bus: Bus) -> None:
        with pytest.raises(BusError, match="expected bytes, got str"):
            bus.publish(unique("t"), "text")  # type: ignore[arg-type]

    def test_a_consumer_needs_at_least_one_topic(self, bus: Bus) -> None:
        with pytest.raises(BusError, match="at least one topic"):
            bus.consumer(unique("g"), [])
