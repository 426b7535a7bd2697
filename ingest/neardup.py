"""Near-duplicate detection of syndicated copies: an LSH index of recent items' fingerprints.

Each new item's :class:`~ingest.fingerprint.Fingerprint` is looked up in a banded LSH index of the
items published within the time horizon; the candidate with the highest estimated Jaccard
similarity at or above the threshold that passes the guards of :class:`NearDupIndex` is the
original. Signatures of indexed items are rows of one matrix, so candidates are compared in one
numpy step.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from ingest.facts import contradict
from ingest.fingerprint import SIGNATURE_DTYPE, Fingerprint, Fingerprinter

__all__ = ["Fingerprint", "Fingerprinter", "Match", "NearDupIndex"]


@dataclass(frozen=True, slots=True)
class Match:
    """The indexed item an item repeats, and their estimated Jaccard similarity."""

    original: str
    similarity: float


class NearDupIndex:
    """In-memory MinHash LSH index of recent items; not thread-safe (the ingest pipeline serialises it).

    An item is a copy of an indexed item published within ``horizon`` of it when the estimated
    Jaccard similarity of their shingle sets is at least ``threshold`` and, as syndicated copies
    are and templated stories about different companies are not:

    * their ticker hints are not disjoint (``$AURM`` vs ``$NWBK`` are different stories),
    * their titles' facts do not contradict (:func:`ingest.facts.contradict`: other numbers, a rise
      against a fall), and
    * one title contains the other (up to ``title_containment`` of its shingles: copies keep the
      headline, maybe with "UPDATE 1-" or a source tag) or the bodies are near-identical
      (similarity at least ``strong_threshold``: the headline was rewritten, the story was not).

    ``bands`` × ``num_perm / bands`` rows set the LSH recall curve: a pair of similarity s becomes a
    candidate with probability 1 - (1 - s^rows)^bands (0.9988 at s = 0.7 for 16 × 3). Items with
    fewer than ``min_shingles`` shingles (one-line posts) are left to exact dedup.
    """

    def __init__(self, threshold: float = 0.6, num_perm: int = 48, bands: int = 16,
                 horizon: timedelta = timedelta(hours=48), min_shingles: int = 24,
                 strong_threshold: float = 0.85, title_containment: float = 0.9) -> None:
        self.fingerprinter = Fingerprinter(num_perm, bands, min_shingles)
        self.threshold, self.strong_threshold, self.title_containment = threshold, strong_threshold, title_containment
        self.num_perm, self.bands, self.min_shingles = num_perm, bands, min_shingles
        self.horizon_s = horizon.total_seconds()
        self._buckets: dict[int, set[int]] = {}  # band key -> slots (sets: eviction removes in O(1))
        # Signatures of indexed items as rows of one matrix, so candidates are compared in one step.
        self._matrix = np.zeros((1024, num_perm), dtype=SIGNATURE_DTYPE)
        self._slots: dict[str, int] = {}
        self._ids: list[str] = []  # slot -> id ("" when free)
        self._free: list[int] = []
        self._entries: dict[str, Fingerprint] = {}
        self._grams: dict[str, frozenset[str]] = {}  # title n-grams of indexed items, made when first needed
        self._heap: list[tuple[float, str]] = []  # (published, id): the oldest first, for eviction
        self._newest = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._entries

    def fingerprint(self, title: str, body: str, lang: str, hints: Iterable[str],
                    published: datetime) -> Fingerprint | None:
        """An item's fingerprint (see :meth:`Fingerprinter.fingerprint`), or None when it is too short."""
        return self.fingerprinter.fingerprint(title, body, lang, hints, published.timestamp())

    def match(self, fp: Fingerprint) -> Match | None:
        """The most similar indexed item that ``fp`` is a copy of (see the class doc), if any."""
        candidates = self._candidates(self._bands_of(fp))
        if not candidates:
            return None
        slots = np.fromiter(candidates, dtype=np.intp, count=len(candidates))
        agree = np.add.reduce(self._matrix[slots] == fp.signature, axis=1, dtype=np.intp)
        best: Match | None = None
        grams: frozenset[str] | None = None  # the title's n-grams, made for the first candidate that needs them
        for i in np.flatnonzero(agree >= self.threshold * self.num_perm):
            key = self._ids[slots[i]]
            other = self._entries[key]
            similarity = float(agree[i]) / self.num_perm
            if best is not None and similarity <= best.similarity:
                continue
            if abs(other.published - fp.published) > self.horizon_s:
                continue
            if fp.hints and other.hints and fp.hints.isdisjoint(other.hints):
                continue
            if contradict(fp.facts, other.facts):  # +5% / -5%, Q3 / Q4, an upgrade / a downgrade
                continue
            if similarity < self.strong_threshold:
                grams = fp.title_grams if grams is None else grams
                if _containment(grams, self._title_grams(key, other)) < self.title_containment:
                    continue
            best = Match(key, round(similarity, 4))
        return best

    def add(self, item_id: str, fp: Fingerprint) -> None:
        """Index an item (an id already present is left as it is).

        Items published more than the horizon before the newest indexed item are evicted: no item
        within the horizon of the stream's present can match them.
        """
        if item_id in self._entries:
            return
        slot = self._allocate(item_id)
        self._matrix[slot] = fp.signature
        for band in self._bands_of(fp):
            self._buckets.setdefault(band, set()).add(slot)
        self._entries[item_id] = fp
        heapq.heappush(self._heap, (fp.published, item_id))
        if fp.published > self._newest:
            self._newest = fp.published
            self.evict(fp.published - self.horizon_s)

    def remove(self, item_id: str) -> None:
        """Forget an item (its publication failed); unknown ids are ignored."""
        fp = self._entries.pop(item_id, None)
        if fp is not None:
            self._unbucket(item_id, fp)
            self._heap = [(w, k) for w, k in self._heap if k != item_id]
            heapq.heapify(self._heap)

    def evict(self, before: float) -> int:
        """Drop items published before ``before`` (POSIX seconds); returns how many were dropped."""
        dropped = 0
        while self._heap and self._heap[0][0] < before:
            _, key = heapq.heappop(self._heap)
            fp = self._entries.pop(key, None)
            if fp is not None:
                self._unbucket(key, fp)
                dropped += 1
        return dropped

    def cutoff(self) -> float:
        """POSIX time before which indexed items are no longer needed (for pruning the state store)."""
        return self._newest - self.horizon_s

    def _title_grams(self, item_id: str, fp: Fingerprint) -> frozenset[str]:
        grams = self._grams.get(item_id)
        if grams is None:
            grams = self._grams[item_id] = fp.title_grams
        return grams

    def _bands_of(self, fp: Fingerprint) -> tuple[int, ...]:
        return fp.bands if len(fp.bands) == self.bands else self.fingerprinter.band_keys(fp.signature)

    def _candidates(self, bands: tuple[int, ...]) -> set[int]:
        get = self._buckets.get
        return set().union(*[bucket for bucket in map(get, bands) if bucket])

    def _allocate(self, item_id: str) -> int:
        if self._free:
            slot = self._free.pop()
            self._ids[slot] = item_id
        else:
            slot = len(self._ids)
            self._ids.append(item_id)
            if slot >= len(self._matrix):
                grown = np.zeros((2 * len(self._matrix), self.num_perm), dtype=SIGNATURE_DTYPE)
                grown[: len(self._matrix)] = self._matrix
                self._matrix = grown
        self._slots[item_id] = slot
        return slot

    def _unbucket(self, item_id: str, fp: Fingerprint) -> None:
        slot = self._slots.pop(item_id)
        for band in self._bands_of(fp):
            bucket = self._buckets.get(band)
            if bucket is not None:
                bucket.discard(slot)
                if not bucket:
                    del self._buckets[band]
        self._ids[slot] = ""
        self._free.append(slot)
        self._grams.pop(item_id, None)


def _containment(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of the smaller set's elements that the other set holds."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & large) / len(small) if small else 0.0
