"""The alerts-topic sink: every new or changed alert, as JSON keyed by its id, for other services."""

from __future__ import annotations

from finsentinel.bus.base import Bus
from finsentinel.schema import Alert


class TopicSink:
    """Publishes alerts to a bus topic (``bus.topics.alerts``) and flushes each one."""

    transitions_only = False

    def __init__(self, bus: Bus, topic: str) -> None:
        self.bus, self.topic = bus, topic
        self.name = f"topic:{topic}"

    def send(self, alert: Alert) -> None:
        self.bus.publish(self.topic, alert.to_json(), key=alert.id.encode())
        self.bus.flush()

    def close(self) -> None:
        """The bus belongs to the caller."""
