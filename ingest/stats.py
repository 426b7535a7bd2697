"""Counters of ingest runs, JSON-ready through ``dataclasses.asdict`` (the CLI prints them)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from finsentinel import metrics as core_metrics
from finsentinel.schema import RawItem
from ingest.health import Counts
from ingest.parse import Skipped

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceStats:
    """Counters of one source in one run. ``fetched`` = published + duplicates + near_duplicates + skipped."""

    fetched: int = 0
    published: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    skipped: int = 0
    errors: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    not_modified: bool = False
    paused: bool = False
    error: str | None = None
    skip_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestStats:
    """Counters of one :meth:`~ingest.worker.IngestWorker.run_once` pass."""

    fetched: int = 0
    published: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    skipped: int = 0
    errors: int = 0
    per_source: dict[str, SourceStats] = field(default_factory=dict)
    by_lang: dict[str, int] = field(default_factory=dict)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Tally:
    """Mutable counters of one source while a run is under way."""

    files_read: int = 0
    files_unchanged: int = 0
    items: int = 0
    published: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    errors: int = 0
    not_modified: bool = False
    paused: bool = False
    error: str | None = None
    reasons: Counter[str] = field(default_factory=Counter)
    langs: Counter[str] = field(default_factory=Counter)

    def skip(self, skipped: Skipped) -> None:
        """Count a skipped entry (logged with its reason and an excerpt)."""
        self.reasons[skipped.reason] += 1
        core_metrics.SKIPPED.labels(skipped.source, skipped.reason).inc()
        log.info("source %s: skipped an entry (%s): %s", skipped.source, skipped.reason, skipped.excerpt)

    def add(self, counts: Counts, published: Iterable[RawItem]) -> None:
        """Add one processed fetch."""
        self.published += counts.new
        self.duplicates += counts.duplicates
        self.near_duplicates += counts.near_duplicates
        self.langs.update(item.lang for item in published)

    def freeze(self) -> SourceStats:
        """The counters as a frozen record."""
        skipped = sum(self.reasons.values())
        return SourceStats(
            fetched=self.items + skipped, published=self.published, duplicates=self.duplicates,
            near_duplicates=self.near_duplicates, skipped=skipped, errors=self.errors, files_read=self.files_read,
            files_unchanged=self.files_unchanged, not_modified=self.not_modified, paused=self.paused, error=self.error,
            skip_reasons=dict(sorted(self.reasons.items())),
        )


def summarise(tallies: dict[str, Tally], seconds: float) -> IngestStats:
    """The pass's totals from the per-source tallies."""
    per_source = {name: t.freeze() for name, t in tallies.items()}
    reasons: Counter[str] = Counter()
    langs: Counter[str] = Counter()
    for tally in tallies.values():
        reasons.update(tally.reasons)
        langs.update(tally.langs)
    return IngestStats(
        fetched=sum(s.fetched for s in per_source.values()),
        published=sum(s.published for s in per_source.values()),
        duplicates=sum(s.duplicates for s in per_source.values()),
        near_duplicates=sum(s.near_duplicates for s in per_source.values()),
        skipped=sum(reasons.values()),
        errors=sum(s.errors for s in per_source.values()),
        per_source=per_source,
        by_lang=dict(sorted(langs.items())),
        skip_reasons=dict(sorted(reasons.items())),
        seconds=round(seconds, 3),
    )
