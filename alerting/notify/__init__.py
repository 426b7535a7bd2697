"""Alert sinks: log, webhook, e-mail, the alerts topic and the index, behind one fan-out notifier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from alerting.notify.base import Sink
from alerting.notify.dispatch import Notifier, SinkStats
from alerting.notify.ledger import DeliveryLedger

if TYPE_CHECKING:
    from alerting.index.base import Index
    from finsentinel.bus.base import Bus
    from finsentinel.schema import Alert
    from finsentinel.settings import NotifySettings


def build_sinks(settings: NotifySettings, bus: Bus | None = None, topic: str | None = None,
                index: Index | None = None) -> list[Sink]:
    """The sinks ``settings`` switch on (the topic sink needs ``bus`` and ``topic``, the index sink ``index``)."""
    from alerting.notify.index import IndexSink
    from alerting.notify.log import LogSink
    from alerting.notify.smtp import EmailSink
    from alerting.notify.topic import TopicSink
    from alerting.notify.webhook import WebhookSink

    sinks: list[Sink] = []
    if settings.log:
        sinks.append(LogSink())
    if settings.topic and bus is not None and topic is not None:
        sinks.append(TopicSink(bus, topic))
    if settings.index and index is not None:
        sinks.append(IndexSink(index))
    sinks.extend(WebhookSink(w) for w in settings.webhooks)
    if settings.email is not None:
        sinks.append(EmailSink(settings.email))
    return sinks


def build_notifier(settings: NotifySettings, bus: Bus | None = None, topic: str | None = None,
                   index: Index | None = None, known: Sequence[Alert] = ()) -> Notifier:
    """A started :class:`Notifier` over :func:`build_sinks`, with the delivery ledger the settings name.

    ``known`` alerts are not re-sent (with a ledger: they seed a new ledger file).
    """
    ledger = DeliveryLedger(settings.ledger_path) if settings.ledger_path is not None else None
    return Notifier(build_sinks(settings, bus, topic, index), retries=settings.retries,
                    backoff_s=settings.backoff_s, max_backoff_s=settings.max_backoff_s,
                    queue_size=settings.queue_size, min_severity=settings.min_severity, known=known,
                    ledger=ledger)


__all__ = ["DeliveryLedger", "Notifier", "Sink", "SinkStats", "build_notifier", "build_sinks"]
