"""The Kafka bus: :class:`finsentinel.bus.base.Bus` over kafka-python 3.x.

This is the only module that imports ``kafka``. Nothing connects until first use: the
producer is built on the first publish, a consumer on its first poll, an admin client for
each :meth:`KafkaBus.ensure_topics`. Every kafka-python error is translated into a one-line
:class:`BusError` naming the operation, the bootstrap servers and the likely fix.

Delivery: the producer is idempotent with ``acks='all'`` (so retries neither lose nor
duplicate nor reorder records of a partition); :meth:`KafkaBus.flush` raises unless every
record published since the previous flush was acknowledged. Consumers never auto-commit;
:meth:`KafkaConsumerAdapter.commit` commits the positions after the polled records, which
the stage worker calls only once a batch's outputs are flushed (at-least-once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import kafka
import kafka.errors as kerr
from kafka.net.compat import KafkaNetClient

from finsentinel.bus.base import Headers, Record
from finsentinel.errors import BusError, ConfigError
from finsentinel.settings import KafkaSettings

log = logging.getLogger(__name__)

LINGER_MS = 5
"""How long the producer waits to batch records that arrive together."""

RETRIES = 2_147_483_647
"""Producer retries (Java client default); delivery_timeout_ms bounds the total time."""

BOOTSTRAP_HINT = "is Kafka running? set bus.kafka.bootstrap_servers or FINSENTINEL_BUS__KAFKA__BOOTSTRAP_SERVERS"

_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    kerr.KafkaTimeoutError,
    kerr.KafkaConnectionError,
    kerr.NodeNotReadyError,
    kerr.MetadataEmptyBrokerList,
    kerr.RequestTimedOutError,
    kerr.CoordinatorNotAvailableError,
    kerr.BrokerNotAvailableError,
    ConnectionError,
    TimeoutError,
)
# Errors a call to kafka-python can raise for reasons outside this program: the broker, the
# network, certificates, a record the broker refuses. Anything else is a bug and propagates.
_KAFKA_ERRORS: tuple[type[BaseException], ...] = (kerr.KafkaError, OSError, ValueError)


def _hint(exc: BaseException) -> str:
    """The likely fix for ``exc``, as one short clause."""
    if isinstance(exc, kerr.SaslAuthenticationFailedError | kerr.UnsupportedSaslMechanismError):
        return ("check bus.kafka.sasl_mechanism, sasl_username and sasl_password "
                "(FINSENTINEL_BUS__KAFKA__SASL_PASSWORD)")
    if isinstance(exc, kerr.AuthorizationError):
        return "the credentials lack permission: grant the ACLs for these topics and groups"
    if isinstance(exc, kerr.InvalidReplicationFactorError):
        return "set bus.kafka.replication_factor to at most the number of brokers"
    if isinstance(exc, kerr.MessageSizeTooLargeError | kerr.RecordListTooLargeError):
        return "the record exceeds the size limit: shorten it or raise max.message.bytes"
    if isinstance(exc, kerr.CommitFailedError):
        return "the group rebalanced; these records will be delivered again"
    if isinstance(exc, kerr.KafkaConfigurationError):
        return "check the bus.kafka settings"
    if isinstance(exc, _CONNECT_ERRORS):
        return BOOTSTRAP_HINT
    if isinstance(exc, OSError):
        return "check the broker address and bus.kafka.ssl_* files"
    return "see the broker logs"


def translate(action: str, servers: str, exc: BaseException) -> BusError:
    """A one-line :class:`BusError` for ``exc`` raised while doing ``action`` against ``servers``."""
    text, name = str(exc), type(exc).__name__
    detail = " ".join((text if text.startswith(name) else f"{name}: {text}").split())[:500]
    return BusError(f"Kafka {action} failed (bootstrap servers {servers}): {detail}; {_hint(exc)}")


def _servers(settings: KafkaSettings) -> list[str]:
    servers = [s.strip() for s in settings.bootstrap_servers.split(",") if s.strip()]
    if not servers:
        raise ConfigError(
            f"bus.kafka.bootstrap_servers: expected 'host:port[,host:port...]', got {settings.bootstrap_servers!r}"
        )
    return servers


def _security_config(settings: KafkaSettings) -> dict[str, Any]:
    proto = settings.security_protocol
    out: dict[str, Any] = {"security_protocol": proto}
    sasl = {"sasl_mechanism": settings.sasl_mechanism, "sasl_username": settings.sasl_username,
            "sasl_password": settings.sasl_password}
    sasl_set = [name for name, value in sasl.items() if value]
    if proto.startswith("SASL_"):
        if settings.sasl_mechanism is None or settings.sasl_username is None or settings.sasl_password is None:
            missing = ", ".join(name for name in sasl if name not in sasl_set)
            raise ConfigError(
                f"bus.kafka.security_protocol is {proto}: expected {missing} to be set too, got none; "
                "set them in the settings file or the FINSENTINEL_BUS__KAFKA__* variables"
            )
        out["sasl_mechanism"] = settings.sasl_mechanism
        out["sasl_plain_username"] = settings.sasl_username
        out["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    elif sasl_set:
        raise ConfigError(
            f"bus.kafka: {', '.join(sasl_set)} set but security_protocol is {proto}; "
            "set security_protocol to SASL_SSL (or SASL_PLAINTEXT) or remove the SASL settings"
        )
    ssl_files = {"ssl_cafile": settings.ssl_cafile, "ssl_certfile": settings.ssl_certfile,
                 "ssl_keyfile": settings.ssl_keyfile}
    ssl_set = {name: str(path) for name, path in ssl_files.items() if path is not None}
    if ssl_set and not proto.endswith("SSL"):
        raise ConfigError(
            f"bus.kafka: {', '.join(ssl_set)} set but security_protocol is {proto}; "
            "set security_protocol to SSL or SASL_SSL, or remove the ssl_* settings"
        )
    out.update(ssl_set)
    return out


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """kafka-python keyword arguments shared by the producer, consumers and admin client."""
    return {
        "bootstrap_servers": _servers(settings),
        "client_id": settings.client_id,
        "request_timeout_ms": settings.request_timeout_ms,
        "bootstrap_timeout_ms": settings.request_timeout_ms,
        **_security_config(settings),
    }


def producer_config(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for :class:`kafka.KafkaProducer`: durable, idempotent, lightly batched."""
    return {
        **client_config(settings),
        "acks": "all",
        "enable_idempotence": True,
        "retries": RETRIES,
        "linger_ms": LINGER_MS,
        "max_block_ms": settings.request_timeout_ms,
        "delivery_timeout_ms": max(120_000, settings.request_timeout_ms + LINGER_MS),
    }


def consumer_config(settings: KafkaSettings, group: str) -> dict[str, Any]:
    """Keyword arguments for :class:`kafka.KafkaConsumer`: manual commits, earliest when new."""
    return {
        **client_config(settings),
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # kafka-python requires fetch_max_wait_ms < request_timeout_ms.
        "fetch_max_wait_ms": min(500, settings.request_timeout_ms // 2),
    }


def admin_config(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for :class:`kafka.KafkaAdminClient`."""
    return client_config(settings)


def _build(factory: Callable[..., Any], *args: Any, **config: Any) -> Any:
    """Construct a kafka-python client; if construction fails, stop the I/O thread it started.

    kafka-python 3.x starts a network thread before bootstrapping and leaves it running when
    bootstrap times out; a worker retrying against a dead broker would leak one per attempt.
    """
    clients: list[Any] = []

    def net_client(**cfg: Any) -> Any:
        client = KafkaNetClient(**cfg)
        clients.append(client)
        return client

    try:
        return factory(*args, kafka_client=net_client, **config)
    except BaseException:
        for client in clients:
            try:
                client.close()
            except Exception:  # best-effort cleanup: the original error is the one to report
                log.debug("closing a half-built Kafka client failed", exc_info=True)
        raise


def _to_record(msg: Any) -> Record:
    headers: Headers = tuple((str(k), bytes(v) if v is not None else b"") for k, v in (msg.headers or ()))
    return Record(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        value=msg.value if msg.value is not None else b"",
        headers=headers,
        timestamp_ms=max(int(msg.timestamp), 0) if msg.timestamp is not None else 0,
    )


class KafkaBus:
    """Kafka implementation of :class:`finsentinel.bus.base.Bus`. The constructor does no I/O."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.servers = settings.bootstrap_servers
        self._producer_config = producer_config(settings)  # validates the settings now, connects later
        self._lock = threading.Lock()
        self._producer: Any = None
        # Delivery futures not yet checked, per publishing thread: each thread's flush answers for its
        # own records, so a failure is not reported to (and swallowed by) another thread's flush.
        self._futures: dict[int, list[Any]] = {}

    def _error(self, action: str, exc: BaseException) -> BusError:
        return translate(action, self.servers, exc)

    def _producer_(self) -> Any:
        with self._lock:
            if self._producer is None:
                try:
                    self._producer = _build(kafka.KafkaProducer, **self._producer_config)
                except _KAFKA_ERRORS as exc:
                    raise self._error("producer start", exc) from exc
            return self._producer

    def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create missing topics with ``partitions``/``replication_factor``; existing ones are left alone."""
        names = list(dict.fromkeys(topics))
        if not names:
            return
        spec = {n: {"num_partitions": self.settings.partitions,
                    "replication_factor": self.settings.replication_factor} for n in names}
        try:
            admin = _build(kafka.KafkaAdminClient, **admin_config(self.settings))
        except _KAFKA_ERRORS as exc:
            raise self._error("admin connect", exc) from exc
        try:
            result = admin.create_topics(spec, raise_errors=False)
            for topic in result.get("topics", ()):
                error = kerr.for_code(topic.get("error_code", 0))
                if error not in (kerr.NoError, kerr.TopicAlreadyExistsError):
                    raise error(topic.get("error_message") or f"cannot create topic {topic.get('name')}")
            admin.wait_for_topics(names, timeout_ms=self.settings.request_timeout_ms)
        except _KAFKA_ERRORS as exc:
            raise self._error(f"create topics {', '.join(names)}", exc) from exc
        finally:
            admin.close()
        log.info("Kafka topics ready: %s", ", ".join(names))

    def publish(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()) -> None:
        """Queue one record; it is durable once :meth:`flush` returns."""
        if not isinstance(value, bytes | bytearray):
            raise BusError(f"publish to {topic}: expected bytes, got {type(value).__name__}")
        producer = self._producer_()
        try:
            future = producer.send(topic, value=bytes(value), key=key, headers=[(k, bytes(v)) for k, v in headers])
        except _KAFKA_ERRORS as exc:
            raise self._error(f"publish to {topic}", exc) from exc
        with self._lock:
            self._futures.setdefault(threading.get_ident(), []).append(future)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every record this thread published since its last flush is acknowledged, or raise BusError."""
        with self._lock:
            producer, futures = self._producer, self._futures.pop(threading.get_ident(), [])
        if producer is None:
            return
        try:
            producer.flush(timeout=timeout_s)
        except _KAFKA_ERRORS as exc:
            raise self._error(f"flush of {len(futures)} records", exc) from exc
        failed = [f.exception for f in futures if not f.is_done or f.failed()]
        if failed:
            first = failed[0] or kerr.KafkaTimeoutError("record not acknowledged")
            raise self._error(f"delivery of {len(failed)} of {len(futures)} records", first)

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumerAdapter:
        """A member of ``group`` reading ``topics``; it joins the group on its first poll."""
        if not topics:
            raise BusError(f"consumer group {group!r}: expected at least one topic, got none")
        return KafkaConsumerAdapter(self.settings, group, list(topics))

    def close(self) -> None:
        """Flush, then close the producer."""
        try:
            self.flush(self.settings.request_timeout_ms / 1000)
        finally:
            with self._lock:
                producer, self._producer = self._producer, None
            if producer is not None:
                try:
                    producer.close(timeout=self.settings.request_timeout_ms / 1000)
                except _KAFKA_ERRORS as exc:
                    log.warning("closing the Kafka producer failed: %s", exc)


class KafkaConsumerAdapter:
    """One member of a Kafka consumer group, behind the :class:`~finsentinel.bus.base.Consumer` Protocol."""

    def __init__(self, settings: KafkaSettings, group: str, topics: list[str]) -> None:
        self.settings, self.group, self.topics = settings, group, topics
        self._config = consumer_config(settings, group)
        self._consumer: Any = None

    def _error(self, action: str, exc: BaseException) -> BusError:
        return translate(f"{action} (group {self.group})", self.settings.bootstrap_servers, exc)

    def _consumer_(self) -> Any:
        if self._consumer is None:
            try:
                self._consumer = _build(kafka.KafkaConsumer, *self.topics, **self._config)
            except _KAFKA_ERRORS as exc:
                raise self._error("consumer start", exc) from exc
        return self._consumer

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        """Up to ``max_records`` records after the group's position, waiting at most ``timeout_s``."""
        consumer = self._consumer_()
        try:
            batches = consumer.poll(timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records)
        except _KAFKA_ERRORS as exc:
            raise self._error(f"poll of {', '.join(self.topics)}", exc) from exc
        return [_to_record(msg) for msgs in batches.values() for msg in msgs]

    def commit(self) -> None:
        """Commit the positions after every record polled so far."""
        if self._consumer is None:
            return
        try:
            self._consumer.commit(timeout_ms=self.settings.request_timeout_ms)
        except _KAFKA_ERRORS as exc:
            raise self._error("commit", exc) from exc

    def close(self) -> None:
        """Leave the group without committing."""
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            consumer.close(autocommit=False, timeout_ms=self.settings.request_timeout_ms)
        except _KAFKA_ERRORS as exc:
            raise self._error("consumer close", exc) from exc
