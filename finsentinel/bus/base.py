"""The bus interface: a narrow Protocol that every backend (local SQLite, Kafka) implements.

Semantics every backend honours (checked by ``tests/contract/bus.py``):

* ``publish`` is durable once ``flush`` returns;
* records with the same key are delivered in publish order;
* ``poll`` hands a consumer the records after its group's committed position;
  ``commit`` makes everything returned by earlier polls committed; a consumer that
  dies before committing leaves those records to be delivered again (at-least-once);
* every consumer group sees every record of the topics it subscribes to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

Headers = tuple[tuple[str, bytes], ...]

DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic that belongs to ``topic``."""
    return topic + DLQ_SUFFIX


@dataclass(frozen=True, slots=True)
class Record:
    """One message as delivered to a consumer."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = field(default=())
    timestamp_ms: int = 0

    def header(self, name: str) -> bytes | None:
        """The first header called ``name``, or None."""
        return next((v for k, v in self.headers if k == name), None)


@runtime_checkable
class Consumer(Protocol):
    """A member of a consumer group reading one or more topics."""

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        """Return up to ``max_records`` records, waiting at most ``timeout_s`` for the first."""
        ...

    def commit(self) -> None:
        """Commit the positions after every record returned so far."""
        ...

    def close(self) -> None:
        """Leave the group without committing."""
        ...


@runtime_checkable
class Bus(Protocol):
    """A message bus: topics, a producer side and consumer groups."""

    def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the topics (and nothing else) if they do not exist; idempotent."""
        ...

    def publish(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()) -> None:
        """Queue one record for ``topic``; durable after :meth:`flush`."""
        ...

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every record this thread published is durable, or raise BusError."""
        ...

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        """Join ``group`` reading ``topics`` from the group's committed position (earliest if none)."""
        ...

    def close(self) -> None:
        """Flush and release connections."""
        ...
