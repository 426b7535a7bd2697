"""The ingest worker: fetch sources, dedup, publish RawItems, remember; once or on a schedule.

``run_once`` fetches every source (a replay until it is drained), processes each round of fetches
as one batch (so copies across sources in the round are counted on the item kept) and returns the
counters. ``run_forever`` runs each source as its own scheduled job (:mod:`ingest.schedule`);
fetches run in parallel threads, batches are processed one at a time. A source that fails is
counted, logged, and paused by its circuit breaker after repeated failures (:mod:`ingest.health`);
it never stops the other sources. Only a failing bus or state store fails a pass, or an unexpected
exception while processing a batch (a bug): that one is logged with its traceback, counted as a
failure of the batch's sources, and raised as :class:`IngestCrashError` (a scheduled run logs it and
runs again at its next time; ``--once`` ends with one error line).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import httpx

from finsentinel import metrics as core_metrics
from finsentinel.bus.base import Bus
from finsentinel.errors import FinSentinelError, SourceError
from finsentinel.schema import RawItem
from finsentinel.settings import FileSourceSettings, IngestSettings
from ingest import metrics, parse_pool
from ingest.dedup import DedupStore
from ingest.health import Counts, Health, after_failure, after_success, is_paused
from ingest.parse import Skipped
from ingest.pipeline import TRUNCATED_HEADER, DecisionHook, Pipeline, Processed
from ingest.schedule import Job, build_scheduler
from ingest.sources import Checkpoint, Fetch, Source, build_sources
from ingest.sources.http import HttpClient
from ingest.stats import IngestStats, SourceStats, Tally, summarise

log = logging.getLogger(__name__)

__all__ = ["TRUNCATED_HEADER", "IngestCrashError", "IngestStats", "IngestWorker", "SourceStats", "demo_sources"]


class IngestCrashError(SourceError):
    """Processing a batch raised an unexpected exception (a bug); its traceback is logged where it happened."""


class IngestWorker:
    """Runs the configured sources into ``topic`` on ``bus`` (see the module doc)."""

    def __init__(self, settings: IngestSettings, bus: Bus, topic: str, *,
                 transport: httpx.BaseTransport | None = None, on_duplicate: DecisionHook | None = None) -> None:
        self.settings, self.bus, self.topic = settings, bus, topic
        self.store = DedupStore(settings.state_path)
        self.http = HttpClient(settings.http, transport)
        self.sources: list[Source] = build_sources(settings, self.http, self.store.is_seen)
        self.pipeline = Pipeline(settings, self.store, bus, topic, on_duplicate)
        self.last_stats: IngestStats | None = None
        self.runs = 0
        self._states: dict[str, tuple[Checkpoint, Health]] | None = None
        self._state_lock = threading.Lock()

    def _state(self, name: str) -> tuple[Checkpoint, Health]:
        with self._state_lock:
            if self._states is None:
                self._states = self.store.source_states()
            return self._states.get(name, (Checkpoint(), Health()))

    def _set_state(self, name: str, checkpoint: Checkpoint, health: Health) -> None:
        with self._state_lock:
            if self._states is not None:
                self._states[name] = (checkpoint, health)

    def run_once(self) -> IngestStats:
        """One pass over every source; raises only when the bus or the state store fails."""
        started = time.perf_counter()
        tallies = {s.name: Tally() for s in self.sources}
        pending = list(self.sources)
        while pending:
            fetched = [(s, f) for s in pending if (f := self._fetch(s, tallies[s.name])) is not None]
            self._process_guarded(fetched, tallies)
            pending = [s for s, f in fetched if f.more]
        stats = summarise(tallies, time.perf_counter() - started)
        self.last_stats, self.runs = stats, self.runs + 1
        log.info("ingest pass: %d fetched, %d published, %d duplicates, %d near-duplicates, %d skipped, "
                 "%d errors in %.2fs", stats.fetched, stats.published, stats.duplicates, stats.near_duplicates,
                 stats.skipped, stats.errors, stats.seconds)
        return stats

    def run_source(self, source: Source) -> SourceStats:
        """Fetch one source (until drained) and process what it returned: one scheduled run.

        Once the worker is stopping (``self.http.stop``, set by :meth:`run_forever`), the run ends after
        the batch in hand; a replay resumes from its saved position at the next start."""
        tally = Tally()
        fetch = self._fetch(source, tally)
        while fetch is not None:
            self._process_guarded([(source, fetch)], {source.name: tally})
            fetch = self._fetch(source, tally) if fetch.more and not self.http.stop.is_set() else None
        self.runs += 1
        stats = tally.freeze()
        if not stats.paused:
            log.info("source %s: %d fetched, %d new, %d duplicates, %d near-duplicates, %d skipped, %d errors",
                     source.name, stats.fetched, stats.published, stats.duplicates, stats.near_duplicates,
                     stats.skipped, stats.errors)
        return stats

    def _fetch(self, source: Source, tally: Tally) -> Fetch | None:
        """Fetch unless paused; a failure is recorded in the source's health and returns None."""
        checkpoint, health = self._state(source.name)
        now = time.time()
        if is_paused(health, now):
            tally.paused = True
            return None
        started = time.perf_counter()
        try:
            fetch = source.fetch(checkpoint, datetime.now(UTC))
        except Exception as exc:  # one bad source never stops the worker
            if not isinstance(exc, SourceError):
                log.exception("source %s: fetch crashed", source.name)
            self._failed(source.name, checkpoint, health, f"{type(exc).__name__}: {exc}", tally)
            return None
        finally:
            metrics.FETCH_SECONDS.labels(source.name).observe(time.perf_counter() - started)
        tally.files_read += fetch.files_read
        tally.files_unchanged += fetch.files_unchanged
        tally.not_modified = tally.not_modified or fetch.not_modified
        return fetch

    def _failed(self, name: str, checkpoint: Checkpoint, health: Health, error: str, tally: Tally) -> None:
        tally.errors += 1
        tally.error = error
        updated = after_failure(health, error, time.time(), self.settings.http)
        metrics.FETCH_ERRORS.labels(name).inc()
        log.warning("source %s: fetch failed (%d in a row): %s", name, updated.failures, error)
        if updated.paused_until is not None and not is_paused(health, time.time()):
            pause = updated.paused_until - time.time()
            log.warning("source %s: paused for %.0fs after %d failed fetches in a row", name, pause, updated.failures)
        metrics.PAUSED.labels(name).set(1 if updated.paused_until else 0)
        self._set_state(name, checkpoint, updated)
        self.store.save_health({name: updated})

    def _process_guarded(self, fetched: Sequence[tuple[Source, Fetch]], tallies: dict[str, Tally]) -> None:
        """:meth:`_process`; an unexpected exception is logged with its traceback, counted as a failure of
        each source of the batch (their checkpoints stay, so it is fetched again), and raised as
        :class:`IngestCrashError`. Bus and state store errors pass as they are."""
        try:
            self._process(fetched, tallies)
        except FinSentinelError:
            raise
        except Exception as exc:
            names = [source.name for source, _ in fetched]
            log.exception("ingest: processing what %s returned crashed", ", ".join(names))
            error = " ".join(f"crashed: {type(exc).__name__}: {exc}".split())
            for name in names:
                checkpoint, health = self._state(name)
                self._failed(name, checkpoint, health, error, tallies[name])
            raise IngestCrashError(
                f"ingest: processing what {', '.join(names)} returned {error} (the traceback is logged above); "
                "the sources' checkpoints stay where they were, so the batch is fetched again at their next run; "
                "this is a bug: please report it with the traceback") from exc

    def _process(self, fetched: Sequence[tuple[Source, Fetch]], tallies: dict[str, Tally]) -> None:
        items: list[RawItem] = []
        for source, fetch in fetched:
            tally = tallies[source.name]
            for result in fetch.results:
                if isinstance(result, Skipped):
                    tally.skip(result)
                else:
                    items.append(result)
                    tally.items += 1
        if not fetched:
            return
        prints = {k: v for _, f in fetched for k, v in f.fingerprints.items()}
        out = self.pipeline.process(items, {s.name: f.checkpoint for s, f in fetched}, prints)
        self._account(fetched, out, tallies)

    def _account(self, fetched: Sequence[tuple[Source, Fetch]], out: Processed, tallies: dict[str, Tally]) -> None:
        per_source = out.by_source()
        now = time.time()
        healths: dict[str, Health] = {}
        for source, fetch in fetched:
            name, tally = source.name, tallies[source.name]
            counts = per_source.get(name, Counter())
            skipped = sum(1 for r in fetch.results if isinstance(r, Skipped))
            got = Counts(len(fetch.results), counts["published"], counts["duplicates"], counts["near_duplicates"],
                         skipped)
            tally.add(got, [i for i in out.published if i.source == name])
            _, health = self._state(name)
            updated = after_success(health, got, now, self.settings.http, fetch.not_modified)
            if updated.suspicious and not health.suspicious:
                log.warning("source %s: no items %d fetches in a row after having items; the feed may have moved, "
                            "changed format or started blocking us", name, updated.zero_streak)
            healths[name] = updated
            self._set_state(name, fetch.checkpoint, updated)
            self._export(name, got, updated)
        self.store.save_health(healths)

    @staticmethod
    def _export(name: str, got: Counts, health: Health) -> None:
        metrics.FETCHED.labels(name).inc(got.fetched)
        metrics.NEAR_DUPLICATES.labels(name).inc(got.near_duplicates)
        core_metrics.INGESTED.labels(name).inc(got.new)
        core_metrics.DUPLICATES.labels(name).inc(got.duplicates)
        core_metrics.LAST_SUCCESS.labels(name).set_to_current_time()
        metrics.PAUSED.labels(name).set(0)
        metrics.SUSPICIOUS.labels(name).set(1 if health.suspicious else 0)

    def _run_logged(self, source: Source) -> None:
        """One scheduled run of ``source``: whatever it raises is logged here, never left to the scheduler."""
        try:
            self.run_source(source)
        except FinSentinelError as exc:  # the traceback of an IngestCrashError is logged already
            log.error("source %s: run failed, will retry at its next run: %s", source.name, exc)
        except Exception:  # not from a fetch or a batch (those are handled above): a bug in the run itself
            log.exception("source %s: run crashed, will retry at its next run", source.name)

    def run_forever(self, stop: threading.Event) -> None:
        """Run every source on its own schedule until ``stop`` is set (see :mod:`ingest.schedule`)."""
        jobs = [
            Job(s.name, lambda s=s: self._run_logged(s), _interval(self.settings, s.name),  # type: ignore[misc]
                _jitter(self.settings, s.name))
            for s in self.sources
        ]
        scheduler = build_scheduler(jobs)
        scheduler.start()
        try:
            while not stop.wait(0.2):
                pass
        finally:
            self.http.stop.set()  # wakes retry waits and ends replay runs so that running jobs end promptly
            scheduler.shutdown(wait=True)
            self.close()

    def warm(self) -> None:
        """Load the language and script models and start sources' helpers before the first pass."""
        parse_pool.load_models()
        for source in self.sources:
            source.warm()

    def close(self) -> None:
        """Release the state store, HTTP connections and sources (the bus belongs to the caller)."""
        for source in self.sources:
            source.close()
        self.http.close()
        self.store.close()


def _interval(settings: IngestSettings, name: str) -> float:
    cfg = next(s for s in settings.sources if s.name == name)
    return cfg.interval_s or settings.interval_s


def _jitter(settings: IngestSettings, name: str) -> float:
    """The source's jitter, at most a tenth of its interval (a 1 s poll must not wait 10 s)."""
    cfg = next(s for s in settings.sources if s.name == name)
    jitter = settings.jitter_s if cfg.jitter_s is None else cfg.jitter_s
    return min(jitter, _interval(settings, name) / 10)


def demo_sources(samples_dir: Path | None = None) -> list[FileSourceSettings]:
    """The bundled sample feeds (``ingest/samples``) as file sources."""
    from ingest.demo_feeds import FEEDS

    base = samples_dir if samples_dir is not None else Path(str(resources.files("ingest").joinpath("samples")))
    return [
        FileSourceSettings.model_validate({"name": f.name, "path": base / f.path, "format": f.format, "lang": f.lang,
                                           "timezone": f.timezone, "mapping": f.mapping})
        for f in FEEDS
    ]
