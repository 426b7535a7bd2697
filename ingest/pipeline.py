"""Dedup and publish one batch of parsed items, then record it: the core of every ingest pass.

Order (:meth:`Pipeline.process`): the batch sorted by publication time → exact dedup against the
state store and the batch → near-dup matching of the new items against the recent-fingerprint index
and each other → publish the survivors, keyed by id, with ``copies`` counting the copies seen in
this batch → flush → one state transaction (seen keys, fingerprints, copies of earlier items, source
checkpoints). A failure before the commit leaves the store and the index as they were: the batch is
fetched and processed again.
Batches are processed one at a time (a lock), whatever thread fetched them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from finsentinel.bus.base import Bus
from finsentinel.schema import RawItem
from finsentinel.settings import IngestSettings
from ingest.dedup import DedupStore, Duplicate
from ingest.neardup import Fingerprint, Match, NearDupIndex
from ingest.normalize import is_truncated
from ingest.sources.base import Checkpoint

log = logging.getLogger(__name__)

TRUNCATED_HEADER = "x-body-truncated"
# Called once per dropped item: (item, id of the item it repeats, "exact" | "near").
DecisionHook = Callable[[RawItem, str, str], None]


@dataclass
class Processed:
    """What one batch became."""

    published: list[RawItem] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    near_duplicates: list[tuple[RawItem, Match]] = field(default_factory=list)
    late_copies: dict[str, int] = field(default_factory=dict)

    def by_source(self) -> dict[str, Counter[str]]:
        """Per source: published, duplicates, near_duplicates."""
        out: dict[str, Counter[str]] = {}
        for item in self.published:
            out.setdefault(item.source, Counter())["published"] += 1
        for item, _ in self.duplicates:
            out.setdefault(item.source, Counter())["duplicates"] += 1
        for item, _ in self.near_duplicates:
            out.setdefault(item.source, Counter())["near_duplicates"] += 1
        return out


class Pipeline:
    """Exact + near dedup, publication and state commit of batches (see the module doc)."""

    def __init__(self, settings: IngestSettings, store: DedupStore, bus: Bus, topic: str,
                 on_duplicate: DecisionHook | None = None) -> None:
        self.settings, self.store, self.bus, self.topic = settings, store, bus, topic
        self.on_duplicate = on_duplicate
        nd = settings.near_dup
        self.index: NearDupIndex | None = NearDupIndex(
            threshold=nd.threshold, num_perm=nd.num_perm, bands=nd.bands, horizon=timedelta(hours=nd.horizon_h),
            min_shingles=nd.min_shingles, strong_threshold=nd.strong_threshold,
            title_containment=nd.title_containment) if nd.enabled else None
        self._loaded = False
        self._topic_ready = False
        self._pruned_at = float("-inf")
        self._lock = threading.Lock()

    def process(self, items: Sequence[RawItem], checkpoints: Mapping[str, Checkpoint] | None = None,
                fingerprints: Mapping[str, Fingerprint | None] | None = None) -> Processed:
        """Dedup, publish and record ``items``; raises if the bus or the store fails.

        Items are taken in order of publication time (a stable sort: ties keep the order given), so
        the earliest item of a story in the batch is its original whichever source delivered it
        first, and what is published does not depend on the order of the sources in a pass.
        ``fingerprints`` (by item id) are near-dup fingerprints made already, e.g. by parse workers.
        """
        with self._lock:
            self._prepare()
            split = self.store.partition(sorted(items, key=_published))
            out = Processed(duplicates=split.duplicates, late_copies=dict(split.late_copies))
            fresh_ids = {item.id for item in split.fresh}
            prints: list[tuple[str, Fingerprint]] = []  # what this batch added to the near-dup index
            try:
                kept = self._near(split.fresh, out, fresh_ids, fingerprints or {}, prints)
                # An exact duplicate of a batch item that was then dropped as a near-duplicate repeats
                # what that item repeats: the published original (its keys must not name an unpublished id).
                dropped = {item.id: match.original for item, match in out.near_duplicates}
                if dropped:
                    out.duplicates = [(item, dropped.get(original, original)) for item, original in out.duplicates]
                self._publish(kept)
                self.store.commit(kept, out.duplicates + [(i, m.original) for i, m in out.near_duplicates],
                                  prints, out.late_copies, checkpoints)
            except BaseException:  # nothing of the batch may stay indexed, or its retry matches itself
                if self.index is not None:
                    for item_id, _ in prints:
                        self.index.remove(item_id)
                raise
            out.published = kept
            self._report(out)
            return out

    def _prepare(self) -> None:
        if not self._topic_ready:
            self.bus.ensure_topics([self.topic])
            self._topic_ready = True
        if self.index is not None and not self._loaded:
            for item_id, fp in self.store.fingerprints(self.index.horizon_s):
                self.index.add(item_id, fp)
            self._loaded = True
            log.info("near-dup memory: %d recent items loaded", len(self.index))

    def _near(self, fresh: list[RawItem], out: Processed, fresh_ids: set[str],
              given: Mapping[str, Fingerprint | None], prints: list[tuple[str, Fingerprint]]) -> list[RawItem]:
        """Drop near-duplicates from ``fresh``; count copies on batch originals or as late copies.

        Each kept item is indexed as it goes and appended to ``prints`` at once, so that the caller
        can take them out of the index again if anything fails, this step included.
        """
        if self.index is None:
            return fresh
        kept: dict[str, RawItem] = {}
        added: dict[str, int] = {}  # copies found in this batch, per kept original
        for item in fresh:
            fp = given[item.id] if item.id in given else self.index.fingerprint(
                item.title, item.body, item.lang, item.entity_hints, item.published_at)
            match = self.index.match(fp) if fp is not None else None
            if match is None:
                kept[item.id] = item
                if fp is not None:
                    prints.append((item.id, fp))
                    self.index.add(item.id, fp)
                continue
            out.near_duplicates.append((item, match))
            if match.original in kept:
                added[match.original] = added.get(match.original, 0) + item.copies
            elif match.original not in fresh_ids:
                out.late_copies[match.original] = out.late_copies.get(match.original, 0) + item.copies
        return [item.model_copy(update={"copies": item.copies + added[item.id]}) if item.id in added else item
                for item in kept.values()]

    def _publish(self, items: list[RawItem]) -> None:
        limit = self.settings.max_body_chars
        for item in items:
            headers = ((TRUNCATED_HEADER, b"1"),) if is_truncated(item.body, limit) else ()
            self.bus.publish(self.topic, item.to_json(), key=item.id.encode(), headers=headers)
        self.bus.flush()

    def _report(self, out: Processed) -> None:
        if self.on_duplicate is not None:
            for item, original in out.duplicates:
                self.on_duplicate(item, original, "exact")
            for item, match in out.near_duplicates:
                self.on_duplicate(item, match.original, "near")
        if self.index is not None and out.published:
            self._prune(self.index.cutoff())

    def _prune(self, cutoff: float) -> None:
        """Forget stored fingerprints older than the horizon, at most once per hour of stream time."""
        if cutoff - self._pruned_at >= 3600:
            removed = self.store.prune_fingerprints(cutoff)
            self._pruned_at = cutoff
            if removed:
                log.info("near-dup memory: forgot %d fingerprints older than the horizon", removed)


def _published(item: RawItem) -> datetime:
    return item.published_at
