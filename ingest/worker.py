"""The ingest worker: read every configured file source, parse, dedup, publish RawItems, remember.

Order of a pass (``run_once``): read files whose checkpoint says they changed → parse →
drop duplicates (store + batch) → publish each new item keyed by its id → flush → mark items
seen and save checkpoints. A crash before the last step re-publishes at worst; every
downstream write is idempotent by item id. One unreadable file or malformed entry is logged,
counted and skipped; it never stops the other sources.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from finsentinel import metrics
from finsentinel.bus.base import Bus
from finsentinel.errors import ConfigError, FinSentinelError
from finsentinel.schema import RawItem
from finsentinel.settings import FileSourceSettings, IngestSettings
from ingest.dedup import Checkpoint, DedupStore
from ingest.normalize import is_truncated, resolve_tz
from ingest.parse import Skipped, mapping_for, parse_json_api, parse_rss

log = logging.getLogger(__name__)

SUFFIXES = {"rss": frozenset({".xml", ".rss", ".atom"}), "json": frozenset({".json"})}
TRUNCATED_HEADER = "x-body-truncated"


@dataclass(frozen=True)
class SourceStats:
    """Counters of one source in one pass. ``fetched`` = published + duplicates + skipped."""

    fetched: int = 0
    published: int = 0
    duplicates: int = 0
    skipped: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestStats:
    """Counters of one :meth:`IngestWorker.run_once` pass (JSON-ready through ``dataclasses.asdict``)."""

    fetched: int = 0
    published: int = 0
    duplicates: int = 0
    skipped: int = 0
    per_source: dict[str, SourceStats] = field(default_factory=dict)
    by_lang: dict[str, int] = field(default_factory=dict)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _Tally:
    files_read: int = 0
    files_unchanged: int = 0
    published: int = 0
    duplicates: int = 0
    items: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def freeze(self) -> SourceStats:
        skipped = sum(self.reasons.values())
        return SourceStats(
            fetched=self.items + skipped, published=self.published, duplicates=self.duplicates,
            skipped=skipped, files_read=self.files_read, files_unchanged=self.files_unchanged,
            skip_reasons=dict(sorted(self.reasons.items())),
        )


def check_sources(sources: list[FileSourceSettings]) -> None:
    """Raise :class:`ConfigError` for duplicate source names, unknown time zones or bad JSON mappings."""
    names = Counter(s.name for s in sources)
    repeated = sorted(n for n, c in names.items() if c > 1)
    if repeated:
        raise ConfigError(f"ingest.sources: names must be unique (they key checkpoints); repeated: {repeated}")
    for source in sources:
        try:
            resolve_tz(source.timezone)
            if source.format == "json":
                mapping_for(source.mapping)
        except ConfigError as exc:
            raise ConfigError(f"ingest source {source.name!r}: {exc}") from exc


class IngestWorker:
    """Replays file sources (RSS/Atom XML, JSON API responses) into ``topic`` on ``bus``."""

    def __init__(self, settings: IngestSettings, bus: Bus, topic: str) -> None:
        check_sources(settings.sources)
        self.settings, self.bus, self.topic = settings, bus, topic
        self.store = DedupStore(settings.state_path)
        self.last_stats: IngestStats | None = None
        self.runs = 0
        self._topic_ready = False

    def run_once(self) -> IngestStats:
        """One pass over every source; raises only when the bus or the state store fails."""
        started = time.perf_counter()
        fetched_at = datetime.now(UTC)
        if not self._topic_ready:
            self.bus.ensure_topics([self.topic])
            self._topic_ready = True
        tallies = {s.name: _Tally() for s in self.settings.sources}
        items: list[RawItem] = []
        checkpoints: list[Checkpoint] = []
        for source in self.settings.sources:
            tally = tallies[source.name]
            for result in self._read_source(source, fetched_at, checkpoints, tally):
                if isinstance(result, Skipped):
                    self._skip(result, tally)
                else:
                    items.append(result)
                    tally.items += 1
        fresh, dups = self.store.split(items)
        self._publish(fresh)
        self.store.add_many(fresh, dups)
        self.store.save_checkpoints(checkpoints)
        stats = self._stats(tallies, fresh, dups, time.perf_counter() - started)
        self.last_stats, self.runs = stats, self.runs + 1
        log.info("ingest pass: %d fetched, %d published, %d duplicates, %d skipped in %.2fs",
                 stats.fetched, stats.published, stats.duplicates, stats.skipped, stats.seconds)
        return stats

    def _read_source(
        self, source: FileSourceSettings, fetched_at: datetime, checkpoints: list[Checkpoint], tally: _Tally
    ) -> list[RawItem | Skipped]:
        out: list[RawItem | Skipped] = []
        files = self._files(source)
        if files is None:
            log.warning("source %s: %s does not exist; skipping it this pass", source.name, source.path)
            return [Skipped(source.name, "missing_path", str(source.path))]
        for file in files:
            try:
                stat = file.stat()
                done = self.store.checkpoint(source.name, str(file))
                if done is not None and (done.mtime_ns, done.size) == (stat.st_mtime_ns, stat.st_size):
                    tally.files_unchanged += 1
                    continue
                results = self._parse_file(source, file.read_bytes(), fetched_at)
            except OSError as exc:
                log.warning("source %s: cannot read %s: %s", source.name, file, exc)
                out.append(Skipped(source.name, "unreadable", f"{file}: {exc}"))
                continue
            except Exception as exc:  # one bad file must not stop the others; the traceback is logged
                log.exception("source %s: parsing %s failed", source.name, file)
                out.append(Skipped(source.name, "parse_error", f"{file}: {exc}"[:200]))
                continue
            tally.files_read += 1
            found = [r for r in results if isinstance(r, RawItem)]
            checkpoints.append(Checkpoint(source.name, str(file), stat.st_mtime_ns, stat.st_size, len(found),
                                          found[-1].id if found else None))
            metrics.LAST_SUCCESS.labels(source.name).set_to_current_time()
            out.extend(results)
        return out

    @staticmethod
    def _files(source: FileSourceSettings) -> list[Path] | None:
        path = source.path
        if path.is_file():
            return [path]
        if not path.is_dir():
            return None
        suffixes = SUFFIXES[source.format]
        return sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
        )

    def _parse_file(self, source: FileSourceSettings, data: bytes, fetched_at: datetime) -> list[RawItem | Skipped]:
        tz = resolve_tz(source.timezone)
        limit = self.settings.max_body_chars
        if source.format == "rss":
            return parse_rss(data, source.name, tz, lang=source.lang, fetched_at=fetched_at, max_body_chars=limit)
        return parse_json_api(data, source.name, mapping_for(source.mapping), tz, lang=source.lang,
                              fetched_at=fetched_at, max_body_chars=limit)

    def _skip(self, skipped: Skipped, tally: _Tally) -> None:
        tally.reasons[skipped.reason] += 1
        metrics.SKIPPED.labels(skipped.source, skipped.reason).inc()
        log.info("source %s: skipped an entry (%s): %s", skipped.source, skipped.reason, skipped.excerpt)

    def _publish(self, fresh: list[RawItem]) -> None:
        limit = self.settings.max_body_chars
        for item in fresh:
            headers = ((TRUNCATED_HEADER, b"1"),) if is_truncated(item.body, limit) else ()
            self.bus.publish(self.topic, item.to_json(), key=item.id.encode(), headers=headers)
        self.bus.flush()

    def _stats(
        self, tallies: dict[str, _Tally], fresh: list[RawItem], dups: list[tuple[RawItem, str]], seconds: float
    ) -> IngestStats:
        for item in fresh:
            tallies[item.source].published += 1
            metrics.INGESTED.labels(item.source).inc()
        for item, _ in dups:
            tallies[item.source].duplicates += 1
            metrics.DUPLICATES.labels(item.source).inc()
        per_source = {name: t.freeze() for name, t in tallies.items()}
        reasons: Counter[str] = Counter()
        for t in tallies.values():
            reasons.update(t.reasons)
        return IngestStats(
            fetched=sum(s.fetched for s in per_source.values()),
            published=len(fresh),
            duplicates=len(dups),
            skipped=sum(reasons.values()),
            per_source=per_source,
            by_lang=dict(sorted(Counter(i.lang for i in fresh).items())),
            skip_reasons=dict(sorted(reasons.items())),
            seconds=round(seconds, 3),
        )

    def _run_logged(self) -> None:
        try:
            self.run_once()
        except FinSentinelError as exc:
            log.error("ingest pass failed, will retry at the next interval: %s", exc)

    def run_forever(self, stop: threading.Event) -> None:
        """Run a pass now and then every ``interval_s`` until ``stop`` is set.

        APScheduler runs the passes: never two at once (``max_instances=1``), missed runs
        collapse into one (``coalesce``), and a run late by up to one interval still runs.
        """
        interval = self.settings.interval_s
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            self._run_logged, "interval", seconds=interval, next_run_time=datetime.now(UTC),
            max_instances=1, coalesce=True, misfire_grace_time=max(1, int(interval)), id="ingest",
        )
        scheduler.start()
        try:
            while not stop.wait(0.2):
                pass
        finally:
            scheduler.shutdown(wait=True)
            self.close()

    def close(self) -> None:
        """Release the state store (the bus belongs to the caller)."""
        self.store.close()


def demo_sources(samples_dir: Path | None = None) -> list[FileSourceSettings]:
    """The bundled sample feeds (``ingest/samples``) as file sources."""
    from ingest.demo_feeds import FEEDS

    base = samples_dir if samples_dir is not None else Path(str(resources.files("ingest").joinpath("samples")))
    return [
        FileSourceSettings.model_validate({"name": f.name, "path": base / f.path, "format": f.format, "lang": f.lang,
                                           "timezone": f.timezone, "mapping": f.mapping})
        for f in FEEDS
    ]
