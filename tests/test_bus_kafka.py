"""The Kafka bus: configuration and error handling without a broker, the contract against a live one."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kafka
import kafka.errors as kerr
import pytest
import yaml
from kafka.consumer.fetcher import ConsumerRecord
from kafka.future import Future
from kafka.structs import TopicPartition
from pydantic import SecretStr

from finsentinel.bus import make_bus
from finsentinel.bus.base import Bus, Consumer
from finsentinel.bus.kafka import (
    BOOTSTRAP_HINT,
    KafkaBus,
    admin_config,
    consumer_config,
    producer_config,
    translate,
)
from finsentinel.errors import BusError, ConfigError
from finsentinel.settings import BusSettings, KafkaSettings, load_settings
from tests.contract.bus import BusContract, NewBus, publish_and_flush_on_another_thread

LIVE_BOOTSTRAP = os.environ.get("FINSENTINEL_KAFKA_BOOTSTRAP")


def closed_port() -> str:
    """host:port on localhost where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def kafka_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("kafka")}


def test_the_constructor_and_idle_calls_do_no_io() -> None:
    threads_before = kafka_threads()
    started = time.monotonic()
    bus = make_bus(BusSettings(backend="kafka", kafka=KafkaSettings(bootstrap_servers=closed_port())))
    assert isinstance(bus, KafkaBus) and isinstance(bus, Bus)
    consumer = bus.consumer("g", ["t"])
    assert isinstance(consumer, Consumer)
    consumer.commit()
    consumer.close()
    bus.flush()
    bus.ensure_topics([])
    bus.close()
    assert time.monotonic() - started < 0.5
    assert kafka_threads() <= threads_before


def test_plaintext_settings_map_to_durable_producer_and_manual_commit_consumer() -> None:
    settings = KafkaSettings(bootstrap_servers=" k1:9092, k2:9093 ,", client_id="fs", request_timeout_ms=12000)
    common = {"bootstrap_servers": ["k1:9092", "k2:9093"], "client_id": "fs", "request_timeout_ms": 12000,
              "bootstrap_timeout_ms": 12000, "security_protocol": "PLAINTEXT"}
    assert admin_config(settings) == common
    producer = producer_config(settings)
    assert producer == {**common, "acks": "all", "enable_idempotence": True, "retries": 2_147_483_647,
                        "linger_ms": 5, "max_block_ms": 12000, "delivery_timeout_ms": 120_000}
    consumer = consumer_config(settings, "classify")
    assert consumer == {**common, "group_id": "classify", "enable_auto_commit": False,
                        "auto_offset_reset": "earliest", "fetch_max_wait_ms": 500}
    assert consumer_config(KafkaSettings(request_timeout_ms=600), "g")["fetch_max_wait_ms"] == 300


def test_sasl_ssl_settings_map_to_kafka_python_arguments(tmp_path: Path) -> None:
    settings = KafkaSettings(
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="svc",
        sasl_password=SecretStr("s3cret"), ssl_cafile=tmp_path / "ca.pem",
        ssl_certfile=tmp_path / "client.pem", ssl_keyfile=tmp_path / "client.key",
    )
    config = producer_config(settings)
    assert {k: config[k] for k in config if k.startswith(("sasl", "ssl", "security"))} == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "svc",
        "sasl_plain_password": "s3cret", "ssl_cafile": str(tmp_path / "ca.pem"),
        "ssl_certfile": str(tmp_path / "client.pem"), "ssl_keyfile": str(tmp_path / "client.key"),
    }
    plain_ssl = admin_config(KafkaSettings(security_protocol="SSL", ssl_cafile=tmp_path / "ca.pem"))
    assert plain_ssl["ssl_cafile"] == str(tmp_path / "ca.pem") and "sasl_mechanism" not in plain_ssl


def test_every_mapped_argument_is_one_the_installed_kafka_python_accepts(tmp_path: Path) -> None:
    settings = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u",
                             sasl_password=SecretStr("p"), ssl_cafile=tmp_path / "ca.pem")
    assert set(producer_config(settings)) <= set(kafka.KafkaProducer.DEFAULT_CONFIG)
    assert set(consumer_config(settings, "g")) <= set(kafka.KafkaConsumer.DEFAULT_CONFIG)
    assert set(admin_config(settings)) <= set(kafka.KafkaAdminClient.DEFAULT_CONFIG)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
         "expected sasl_password to be set too"),
        ({"sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": SecretStr("hidden-pw")},
         "set but security_protocol is PLAINTEXT"),
        ({"ssl_cafile": Path("ca.pem")}, "ssl_cafile set but security_protocol is PLAINTEXT"),
        ({"bootstrap_servers": " , "}, "expected 'host:port"),
    ],
)
def test_inconsistent_settings_fail_at_construction(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        KafkaBus(KafkaSettings(**fields))
    assert "hidden-pw" not in str(info.value)


@pytest.mark.parametrize("action", ["publish", "ensure_topics", "poll"])
def test_an_unreachable_broker_fails_fast_with_one_line_naming_the_servers_and_the_fix(action: str) -> None:
    servers = closed_port()
    threads_before = kafka_threads()
    bus = KafkaBus(KafkaSettings(bootstrap_servers=servers, request_timeout_ms=600))
    calls = {
        "publish": lambda: bus.publish("t", b"x"),
        "ensure_topics": lambda: bus.ensure_topics(["t"]),
        "poll": lambda: bus.consumer("g", ["t"]).poll(10, 0.1),
    }
    started = time.monotonic()
    with pytest.raises(BusError) as info:
        calls[action]()
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "\n" not in message and servers in message and BOOTSTRAP_HINT in message
    bus.close()
    time.sleep(0.05)
    assert kafka_threads() <= threads_before, "a failed connection attempt left a kafka I/O thread running"


@pytest.mark.parametrize(
    ("exc", "hint"),
    [
        (kerr.SaslAuthenticationFailedError("bad password"), "sasl_password"),
        (kerr.TopicAuthorizationFailedError("t"), "ACLs"),
        (kerr.InvalidReplicationFactorError("rf 3 > 1 broker"), "replication_factor"),
        (kerr.MessageSizeTooLargeError("too big"), "max.message.bytes"),
        (kerr.CommitFailedError(), "delivered again"),
        (kerr.KafkaConfigurationError("bad"), "bus.kafka settings"),
        (kerr.NoBrokersAvailable() if hasattr(kerr, "NoBrokersAvailable") else kerr.KafkaConnectionError("down"),
         BOOTSTRAP_HINT),
        (FileNotFoundError(2, "No such file", "ca.pem"), "ssl_*"),
        (kerr.UnknownError("odd\nmulti-line"), "broker logs"),
    ],
)
def test_translate_gives_one_line_with_the_likely_fix(exc: BaseException, hint: str) -> None:
    error = translate("publish to t", "k1:9092", exc)
    text = str(error)
    assert isinstance(error, BusError)
    assert text.startswith("Kafka publish to t failed (bootstrap servers k1:9092): ")
    assert hint in text and "\n" not in text


# Fakes of the three kafka-python clients, installed with monkeypatch, to test the adapter's
# own logic (futures, per-topic errors, record conversion) where no broker is available.


class FakeProducer:
    instances: list[FakeProducer] = []

    def __init__(self, **config: Any) -> None:
        self.config, self.closed = config, False
        self.sent: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]] = []
        self.fail_next: BaseException | None = None
        self.flush_error: BaseException | None = None
        self.send_error: BaseException | None = None
        FakeProducer.instances.append(self)

    def send(self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]) -> Future:
        if self.send_error is not None:
            raise self.send_error
        self.sent.append((topic, value, key, headers))
        future = Future()
        return future.failure(self.fail_next) if self.fail_next else future.success(len(self.sent))

    def flush(self, timeout: float) -> None:
        if self.flush_error is not None:
            raise self.flush_error

    def close(self, timeout: float) -> None:
        self.closed = True


@pytest.fixture
def fake_producer(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeProducer]]:
    FakeProducer.instances = []
    monkeypatch.setattr(kafka, "KafkaProducer", FakeProducer)
    yield FakeProducer


def test_publish_builds_one_producer_lazily_and_flush_checks_every_record(fake_producer: type[FakeProducer]) -> None:
    bus = KafkaBus(KafkaSettings(bootstrap_servers="k1:9092"))
    assert fake_producer.instances == []
    bus.publish("t", b"a", key=b"k", headers=(("h", b"1"),))
    bus.publish("t", bytearray(b"b"))  # type: ignore[arg-type]  # bytearray is accepted too
    (producer,) = fake_producer.instances
    assert producer.config["acks"] == "all" and callable(producer.config["kafka_client"])
    assert producer.sent == [("t", b"a", b"k", [("h", b"1")]), ("t", b"b", None, [])]
    bus.flush()
    producer.fail_next = kerr.NotEnoughReplicasError("only 1 in sync")
    bus.publish("t", b"c")
    with pytest.raises(BusError, match=r"delivery of 1 of 1 records failed .*NotEnoughReplicasError"):
        bus.flush()
    bus.flush()  # a failure is reported once; the caller re-sends what it did not commit
    producer.fail_next = None
    producer.flush_error = kerr.KafkaTimeoutError("Timeout waiting for future")
    bus.publish("t", b"d")
    with pytest.raises(BusError, match=r"flush of 1 records failed .*is Kafka running"):
        bus.flush()
    producer.flush_error = None
    producer.send_error = kerr.MessageSizeTooLargeError("The message is 2000000 bytes")
    with pytest.raises(BusError, match=r"publish to t failed .*max\.message\.bytes"):
        bus.publish("t", b"e" * 10)
    bus.close()
    assert producer.closed and len(fake_producer.instances) == 1


def test_a_delivery_failure_is_reported_to_the_thread_that_published_the_record(
    fake_producer: type[FakeProducer],
) -> None:
    # The alert worker and its alerts-topic sink (a notifier thread) share one bus. The worker's
    # failed dead letter must fail the worker's flush (so it does not commit), whichever thread
    # happens to flush first.
    bus = KafkaBus(KafkaSettings(bootstrap_servers="k1:9092"))
    bus.publish("t", b"warm-up")
    bus.flush()
    (producer,) = fake_producer.instances
    producer.fail_next = kerr.NotEnoughReplicasError("only 1 in sync")
    bus.publish("news.scored.dlq", b"dead letter")  # the worker thread; its delivery fails
    producer.fail_next = None
    errors = publish_and_flush_on_another_thread(bus, "alerts", b"alert")
    with pytest.raises(BusError, match=r"delivery of 1 of 1 records failed .*NotEnoughReplicasError"):
        bus.flush()
    assert errors == []  # the sink's own record was delivered
    bus.close()


class FakeAdmin:
    instances: list[FakeAdmin] = []
    codes: dict[str, int] = {}

    def __init__(self, **config: Any) -> None:
        self.config, self.closed = config, False
        self.waited: list[str] | None = None
        self.spec: dict[str, Any] = {}
        FakeAdmin.instances.append(self)

    def create_topics(self, spec: dict[str, Any], raise_errors: bool) -> dict[str, Any]:
        assert raise_errors is False
        self.spec = spec
        return {"topics": [{"name": n, "error_code": FakeAdmin.codes.get(n, 0), "error_message": None}
                           for n in spec]}

    def wait_for_topics(self, names: list[str], timeout_ms: int) -> None:
        self.waited = names

    def close(self) -> None:
        self.closed = True


def test_ensure_topics_creates_with_configured_layout_and_ignores_existing(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeAdmin.instances = []
    FakeAdmin.codes = {"old": kerr.TopicAlreadyExistsError.errno}
    monkeypatch.setattr(kafka, "KafkaAdminClient", FakeAdmin)
    bus = KafkaBus(KafkaSettings(partitions=6, replication_factor=3))
    bus.ensure_topics(["new", "old", "new"])
    (admin,) = FakeAdmin.instances
    assert admin.spec == {"new": {"num_partitions": 6, "replication_factor": 3},
                          "old": {"num_partitions": 6, "replication_factor": 3}}
    assert admin.waited == ["new", "old"] and admin.closed

    FakeAdmin.codes = {"bad": kerr.InvalidReplicationFactorError.errno}
    with pytest.raises(BusError, match=r"create topics bad failed .*replication_factor to at most"):
        bus.ensure_topics(["bad"])
    assert FakeAdmin.instances[-1].closed


class FakeConsumer:
    instances: list[FakeConsumer] = []

    def __init__(self, *topics: str, **config: Any) -> None:
        self.topics, self.config = topics, config
        self.batches: list[dict[TopicPartition, list[ConsumerRecord]]] = []
        self.commits: list[int] = []
        self.closed_with: dict[str, Any] | None = None
        self.error: BaseException | None = None
        FakeConsumer.instances.append(self)

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        if self.error is not None:
            raise self.error
        return self.batches.pop(0) if self.batches else {}

    def commit(self, timeout_ms: int) -> None:
        if self.error is not None:
            raise self.error
        self.commits.append(timeout_ms)

    def close(self, autocommit: bool, timeout_ms: int) -> None:
        self.closed_with = {"autocommit": autocommit, "timeout_ms": timeout_ms}


def message(topic: str, partition: int, offset: int, **fields: Any) -> ConsumerRecord:
    base: dict[str, Any] = {"leader_epoch": 0, "timestamp": 1_700_000_000_000, "timestamp_type": 0, "key": None,
            "value": b"v", "headers": [], "checksum": None, "serialized_key_size": -1,
            "serialized_value_size": 1, "serialized_header_size": -1}
    return ConsumerRecord(topic=topic, partition=partition, offset=offset, **{**base, **fields})


def test_consumer_joins_on_first_poll_converts_records_and_commits_without_autocommit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeConsumer.instances = []
    monkeypatch.setattr(kafka, "KafkaConsumer", FakeConsumer)
    consumer = KafkaBus(KafkaSettings(request_timeout_ms=7000)).consumer("classify", ["a", "b"])
    assert FakeConsumer.instances == []
    assert consumer.poll(10, 0.1) == []
    (fake,) = FakeConsumer.instances
    assert fake.topics == ("a", "b") and fake.config["group_id"] == "classify"
    assert fake.config["enable_auto_commit"] is False
    fake.batches.append({
        TopicPartition("a", 1): [message("a", 1, 7, key=b"k", headers=[("h", b"x"), ("empty", None)]),
                                 message("a", 1, 8, value=None, timestamp=-1)],
        TopicPartition("b", 0): [message("b", 0, 0)],
    })
    got = consumer.poll(10, 0.1)
    assert [(r.topic, r.partition, r.offset) for r in got] == [("a", 1, 7), ("a", 1, 8), ("b", 0, 0)]
    assert got[0].key == b"k" and got[0].headers == (("h", b"x"), ("empty", b""))
    assert got[0].timestamp_ms == 1_700_000_000_000
    assert (got[1].value, got[1].timestamp_ms) == (b"", 0)
    consumer.commit()
    assert fake.commits == [7000]
    fake.error = kerr.CommitFailedError()
    with pytest.raises(BusError, match=r"commit \(group classify\) failed .*delivered again"):
        consumer.commit()
    with pytest.raises(BusError, match="poll of a, b"):
        consumer.poll(10, 0.1)
    consumer.close()
    assert fake.closed_with == {"autocommit": False, "timeout_ms": 7000}


def test_the_compose_workers_environment_selects_this_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker" / "compose.yaml").read_text())
    env = compose["services"]["classify"]["environment"]
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("FINSENTINEL_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    settings = load_settings()
    assert settings.bus.backend == "kafka" and settings.bus.kafka.bootstrap_servers == "kafka:9092"
    assert isinstance(make_bus(settings.bus), KafkaBus)
    assert env["FINSENTINEL_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert {"ingest", "classify", "alert", "dashboard", "kafka", "elasticsearch", "kibana"} <= set(compose["services"])
    assert compose["services"]["dashboard"]["command"][:1] == ["dashboard"]
    assert "/healthz" in " ".join(compose["services"]["dashboard"]["healthcheck"]["test"])
    assert "models" in compose["volumes"]


@pytest.mark.integration
@pytest.mark.skipif(
    not LIVE_BOOTSTRAP,
    reason="set FINSENTINEL_KAFKA_BOOTSTRAP=host:port to run against a live Kafka; "
    "docker compose in docker/ provides one",
)
class TestKafkaBusContract(BusContract):
    deadline_s = 60.0

    @pytest.fixture
    def new_bus(self) -> Iterator[NewBus]:
        made: list[KafkaBus] = []
        settings = KafkaSettings(bootstrap_servers=LIVE_BOOTSTRAP or "", client_id="finsentinel-tests",
                                 partitions=3, replication_factor=1, request_timeout_ms=15000)

        def factory() -> Bus:
            made.append(KafkaBus(settings))
            return made[-1]

        yield factory
        for bus in made:
            bus.close()
