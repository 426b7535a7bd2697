"""The index sink: alerts stored (upserted by id) in the search index, for dashboards."""

from __future__ import annotations

from alerting.index.base import Index
from finsentinel.schema import Alert


class IndexSink:
    """Upserts every new or changed alert into an :class:`~alerting.index.base.Index`."""

    name = "index"
    transitions_only = False

    def __init__(self, index: Index) -> None:
        self.index = index

    def send(self, alert: Alert) -> None:
        self.index.upsert_alerts([alert])

    def close(self) -> None:
        """The index belongs to the caller."""
