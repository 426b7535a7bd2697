"""Message bus: the Protocol in :mod:`finsentinel.bus.base`, backends beside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from finsentinel.bus.base import Bus, Consumer, Headers, Record, dlq_topic
from finsentinel.errors import ConfigError

if TYPE_CHECKING:
    from finsentinel.settings import BusSettings


def make_bus(settings: BusSettings) -> Bus:
    """Build the configured backend. No connection is made until first use."""
    if settings.backend == "local":
        from finsentinel.bus.local import LocalBus

        return LocalBus(settings.local.path)
    if settings.backend == "kafka":
        from finsentinel.bus.kafka import KafkaBus

        return KafkaBus(settings.kafka)
    raise ConfigError(f"bus.backend: expected 'local' or 'kafka', got {settings.backend!r}")


__all__ = ["Bus", "Consumer", "Headers", "Record", "dlq_topic", "make_bus"]
