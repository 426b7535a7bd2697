"""The ingest state, persisted in one SQLite file: dedup memory, near-dup fingerprints, copies, source state.

An item is an exact duplicate when its canonical URL (tracking parameters dropped) or the hash of
its normalised title + body was seen before. Near-duplicate fingerprints of recent items, the
copy count of each original, and each source's checkpoint and health live beside it. The worker
writes all of it in one transaction after the bus has flushed the items (:meth:`DedupStore.commit`),
so a restarted worker neither re-publishes what it published nor skips what it never published.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finsentinel.errors import SourceError
from finsentinel.schema import RawItem, normalise_text
from finsentinel.sqlite_tx import immediate
from ingest.health import Health
from ingest.neardup import Fingerprint
from ingest.sources.base import Checkpoint

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    key TEXT PRIMARY KEY, item_id TEXT NOT NULL, source TEXT NOT NULL, first_seen REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fingerprints (
    item_id TEXT PRIMARY KEY, published REAL NOT NULL, signature BLOB NOT NULL, title BLOB NOT NULL,
    hints TEXT NOT NULL, facts TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fingerprints_published ON fingerprints(published);
CREATE TABLE IF NOT EXISTS copies (item_id TEXT PRIMARY KEY, copies INTEGER NOT NULL, updated_at REAL NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY, checkpoint TEXT, health TEXT, updated_at REAL NOT NULL
) WITHOUT ROWID;
"""
_CHUNK = 500  # stays below SQLite's bound-parameter limit

Duplicate = tuple[RawItem, str]  # an item and the id of the item it repeats


class DedupStoreError(SourceError):
    """The ingest state file cannot be opened or written."""


def dedup_keys(item: RawItem) -> tuple[str, ...]:
    """The keys under which ``item`` is remembered: its id and its content hash.

    The id stands for the canonical URL (ids are hashes of it when there is one), so the same
    link delivered again is caught without canonicalising the URL a second time.
    """
    key = (item.id, item.title, item.body)
    keys = _KEYS.get(key)
    if keys is None:
        keys = _remember(key, content_digest(item.title, item.body))
    return keys


def content_digest(title: str, body: str) -> str:
    """The hash of an item's normalised title and body (its ``text:`` dedup key)."""
    return hashlib.sha256(normalise_text(f"{title}\n{body}").encode("utf-8")).hexdigest()[:32]


def prime_keys(item: RawItem, digest: str) -> None:
    """Remember ``item``'s dedup keys from its :func:`content_digest` made elsewhere (a parse process)."""
    _remember((item.id, item.title, item.body), digest)


# The keys of recent items: a batch's keys are needed when it is split and again when it is
# committed, and parse processes hand theirs over (prime_keys). Written here rather than with
# functools.lru_cache, which cannot be given values computed elsewhere.
_KEYS: dict[tuple[str, str, str], tuple[str, str]] = {}
_KEYS_MAX = 32768


def _remember(key: tuple[str, str, str], digest: str) -> tuple[str, str]:
    if len(_KEYS) >= _KEYS_MAX:
        _KEYS.clear()
    keys = _KEYS[key] = ("id:" + key[0], "text:" + digest)
    return keys


@dataclass
class Split:
    """A batch partitioned by exact dedup (see :meth:`DedupStore.partition`).

    ``late_copies`` counts, per earlier item, the duplicates that are new copies of it (another URL
    or text of the same story) rather than the same entry delivered again.
    """

    fresh: list[RawItem]
    duplicates: list[Duplicate]
    flags: list[bool]
    late_copies: dict[str, int]


class DedupStore:
    """Persistent ingest state in SQLite at ``path`` (opened on first use; thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a commit survives a crash of the process (the state stays consistent
                # with what was published); on power loss the last commits may be rolled back, and
                # their items are then published again (at-least-once; downstream writes are
                # idempotent by item id). Saves an fsync per batch.
                conn.execute("PRAGMA synchronous=NORMAL")
                # The seen-key index outgrows SQLite's default 2 MB page cache after ~20k items;
                # inserts into it are random, so a bigger cache saves re-reading pages (at most 32 MB).
                conn.execute("PRAGMA cache_size=-32768")
                conn.executescript(_SCHEMA)
                _add_facts_column(conn)
            except (sqlite3.Error, OSError) as exc:
                raise DedupStoreError(
                    f"cannot open the ingest state at {self.path}: {exc}; check ingest.state_path is writable"
                ) from exc
            self._conn = conn
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        try:
            with immediate(db):
                yield db
        except sqlite3.Error as exc:
            raise DedupStoreError(f"ingest state write to {self.path} failed: {exc}") from exc

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return list(self._db().execute(sql, args))
        except sqlite3.Error as exc:
            raise DedupStoreError(f"ingest state read from {self.path} failed: {exc}") from exc

    def _lookup(self, keys: Sequence[str]) -> dict[str, str]:
        """Which of ``keys`` are remembered, mapped to the id of the item that claimed each."""
        found: dict[str, str] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._read(f"SELECT key, item_id FROM seen WHERE key IN ({marks})", chunk)  # noqa: S608
            found.update((str(k), str(i)) for k, i in rows)
        return found

    def is_seen(self, item: RawItem) -> bool:
        """Whether ``item`` (by URL or content) was marked as seen before."""
        return bool(self._lookup(dedup_keys(item)))

    def split(self, items: Sequence[RawItem]) -> tuple[list[RawItem], list[Duplicate]]:
        """Items that are new (the first of each story) and duplicates paired with the id they repeat.

        Checks the store and the batch itself and writes nothing (see :meth:`commit`). A new item
        comes back with ``copies`` counting itself and its duplicates within this batch.
        """
        fresh, dups, _ = self._partition(items)
        return fresh, dups

    def _partition(self, items: Sequence[RawItem]) -> tuple[list[RawItem], list[Duplicate], list[bool]]:
        split = self.partition(items)
        return split.fresh, split.duplicates, split.flags

    def partition(self, items: Sequence[RawItem]) -> Split:
        """Like :meth:`split`, also saying which duplicates of earlier items are new copies of them."""
        all_keys = [dedup_keys(item) for item in items]
        known = self._lookup(sorted({k for keys in all_keys for k in keys}))
        batch: dict[str, int] = {}  # key -> index into fresh
        fresh: list[RawItem] = []
        copies: list[int] = []
        split = Split([], [], [], {})
        for item, keys in zip(items, all_keys, strict=True):
            original = next((known[k] for k in keys if k in known), None)
            index = None if original is not None else next((batch[k] for k in keys if k in batch), None)
            if index is not None:
                copies[index] += 1
                original = fresh[index].id
                for key in keys:
                    batch.setdefault(key, index)
            elif original is not None and not all(k in known for k in keys):
                split.late_copies[original] = split.late_copies.get(original, 0) + 1
                for key in keys:
                    known.setdefault(key, original)
            if original is not None:
                split.duplicates.append((item, original))
                split.flags.append(True)
                continue
            batch.update(dict.fromkeys(keys, len(fresh)))
            fresh.append(item)
            copies.append(1)
            split.flags.append(False)
        split.fresh.extend(i if n == 1 else i.model_copy(update={"copies": n}) for i, n in zip(fresh, copies,
                                                                                              strict=True))
        return split

    def add_many(self, items: Iterable[RawItem], duplicates: Iterable[Duplicate] = ()) -> None:
        """Mark ``items`` as seen, and the keys of ``duplicates`` as belonging to the id they repeat.

        Idempotent: the first item to claim a key keeps it.
        """
        self.commit(list(items), list(duplicates))

    def seen_or_add(self, item: RawItem) -> bool:
        """True when ``item`` is a duplicate; otherwise remember it and return False."""
        return self.seen_or_add_many([item])[0]

    def seen_or_add_many(self, items: Sequence[RawItem]) -> list[bool]:
        """Batch form of :meth:`seen_or_add`: one flag per item, duplicates within the batch included."""
        fresh, dups, flags = self._partition(items)
        self.add_many(fresh, dups)
        return flags

    def commit(
        self,
        fresh: Sequence[RawItem],
        duplicates: Sequence[Duplicate] = (),
        fingerprints: Sequence[tuple[str, Fingerprint]] = (),
        late_copies: Mapping[str, int] | None = None,
        checkpoints: Mapping[str, Checkpoint] | None = None,
        healths: Mapping[str, Health] | None = None,
    ) -> None:
        """Record one published batch in one transaction.

        ``fresh`` items were published (their keys and copy counts are remembered); ``duplicates``
        were dropped (their keys point at the id they repeat); ``fingerprints`` join the near-dup
        memory; ``late_copies`` adds copies to items published earlier; ``checkpoints`` and
        ``healths`` are the sources' new state. Idempotent for seen keys: the first claim wins.
        """
        now = time.time()
        seen = [(k, item.id, item.source, now) for item in fresh for k in dedup_keys(item)]
        seen += [(k, original, item.source, now) for item, original in duplicates for k in dedup_keys(item)]
        seen.sort()  # inserted in key order: each index page is visited once, not once per key in it
        copies = [(item.id, item.copies, now) for item in fresh]
        copies += [(item_id, n, now) for item_id, n in (late_copies or {}).items()]
        prints = [(item_id, fp.published, *fp.to_bytes()) for item_id, fp in fingerprints]
        states = [(name, cp.to_json(), now) for name, cp in (checkpoints or {}).items()]
        health = [(name, h.to_json(), now) for name, h in (healths or {}).items()]
        with self._lock, self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO seen(key, item_id, source, first_seen) VALUES (?,?,?,?)", seen)
            db.executemany(
                "INSERT INTO copies(item_id, copies, updated_at) VALUES (?,?,?) ON CONFLICT(item_id) "
                "DO UPDATE SET copies = copies + excluded.copies, updated_at = excluded.updated_at", copies)
            db.executemany("INSERT OR IGNORE INTO fingerprints(item_id, published, signature, title, hints, facts) "
                           "VALUES (?,?,?,?,?,?)", prints)
            db.executemany("INSERT INTO sources(source, checkpoint, updated_at) VALUES (?,?,?) ON CONFLICT(source) "
                           "DO UPDATE SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at", states)
            db.executemany("INSERT INTO sources(source, health, updated_at) VALUES (?,?,?) ON CONFLICT(source) "
                           "DO UPDATE SET health = excluded.health, updated_at = excluded.updated_at", health)

    def save_health(self, healths: Mapping[str, Health]) -> None:
        """Store sources' health (counters, breaker, suspicious flag)."""
        self.commit([], healths=healths)

    def source_states(self) -> dict[str, tuple[Checkpoint, Health]]:
        """Every source's checkpoint and health, by source name."""
        rows = self._read("SELECT source, checkpoint, health FROM sources ORDER BY source")
        return {str(s): (Checkpoint.from_json(_text(c)), Health.from_json(_text(h))) for s, c, h in rows}

    def fingerprints(self, horizon_s: float) -> list[tuple[str, Fingerprint]]:
        """Fingerprints published within ``horizon_s`` of the newest one, oldest first."""
        rows = self._read(
            "SELECT item_id, published, signature, title, hints, facts FROM fingerprints "
            "WHERE published >= (SELECT MAX(published) FROM fingerprints) - ? ORDER BY published", (horizon_s,))
        return [(str(i), Fingerprint.from_bytes(bytes(s), bytes(t), str(h), float(p), _text(f)))
                for i, p, s, t, h, f in rows]

    def prune_fingerprints(self, before: float) -> int:
        """Forget fingerprints published before ``before`` (POSIX seconds); returns how many."""
        with self._lock, self._tx() as db:
            return db.execute("DELETE FROM fingerprints WHERE published < ?", (before,)).rowcount

    def copies(self, item_id: str) -> int:
        """How many times the story of ``item_id`` was seen (itself included); 0 if never."""
        rows = self._read("SELECT copies FROM copies WHERE item_id = ?", (item_id,))
        return int(rows[0][0]) if rows else 0

    def count(self) -> int:
        """How many keys are remembered."""
        (n,) = self._read("SELECT COUNT(*) FROM seen")[0]
        return int(n)

    def close(self) -> None:
        """Close the connection; the next call reopens it."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _add_facts_column(conn: sqlite3.Connection) -> None:
    """Give a state file written before titles' facts were kept their column (NULL: not known),
    in one transaction, so that a second process opening it at the same time finds the column."""
    with immediate(conn):
        if "facts" not in {row[1] for row in conn.execute("PRAGMA table_info(fingerprints)")}:
            conn.execute("ALTER TABLE fingerprints ADD COLUMN facts TEXT")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
