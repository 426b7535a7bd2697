"""The log sink: one WARNING line per new, escalated or resolved alert."""

from __future__ import annotations

import logging

from alerting.notify.base import evidence, subject
from finsentinel.schema import Alert

log = logging.getLogger(__name__)


class LogSink:
    """Writes alerts to the ``alerting.notify.log`` logger."""

    name = "log"
    transitions_only = True

    def send(self, alert: Alert) -> None:
        log.warning("%s. %s [alert %s]", subject(alert), evidence(alert), alert.id)

    def close(self) -> None:
        """Nothing to release."""
