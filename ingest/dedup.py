"""Exact duplicate memory and per-file checkpoints, persisted in one SQLite file.

An item is a duplicate when its canonical URL (tracking parameters dropped) or the hash of its
normalised title + body was seen before. The store survives restarts, so a restarted worker
neither re-publishes what it published nor skips what it never published: the worker marks
items as seen only after the bus has flushed them.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from finsentinel.errors import SourceError
from finsentinel.schema import RawItem, canonical_url, normalise_text

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    key TEXT PRIMARY KEY, item_id TEXT NOT NULL, source TEXT NOT NULL, first_seen REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    source TEXT NOT NULL, file TEXT NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    items INTEGER NOT NULL, last_item_id TEXT, updated_at REAL NOT NULL, PRIMARY KEY (source, file)
) WITHOUT ROWID;
"""
_CHUNK = 500  # stays below SQLite's bound-parameter limit


class DedupStoreError(SourceError):
    """The ingest state file cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What was published from one file of a source, and the file's state when it was read."""

    source: str
    file: str
    mtime_ns: int
    size: int
    items: int = 0
    last_item_id: str | None = None


def dedup_keys(item: RawItem) -> tuple[str, ...]:
    """The keys under which ``item`` is remembered: its canonical URL (if any) and its content hash."""
    digest = hashlib.sha256(normalise_text(f"{item.title}\n{item.body}").encode("utf-8")).hexdigest()[:32]
    keys = ("text:" + digest,)
    return ("url:" + canonical_url(item.url), *keys) if item.url else keys


class DedupStore:
    """Persistent exact-dedup memory and checkpoints in SQLite at ``path`` (opened on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
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
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise DedupStoreError(f"ingest state write to {self.path} failed: {exc}") from exc

    def _lookup(self, keys: Sequence[str]) -> dict[str, str]:
        """Which of ``keys`` are remembered, mapped to the id of the item that claimed each."""
        found: dict[str, str] = {}
        db = self._db()
        try:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT key, item_id FROM seen WHERE key IN ({marks})", chunk))  # noqa: S608
        except sqlite3.Error as exc:
            raise DedupStoreError(f"ingest state read from {self.path} failed: {exc}") from exc
        return found

    def is_seen(self, item: RawItem) -> bool:
        """Whether ``item`` (by URL or content) was marked as seen before."""
        with self._lock:
            return bool(self._lookup(dedup_keys(item)))

    def split(self, items: Sequence[RawItem]) -> tuple[list[RawItem], list[tuple[RawItem, str]]]:
        """Items that are new (the first of each story) and duplicates paired with the id they repeat.

        Checks the store and the batch itself and writes nothing (see :meth:`add_many`). A new item
        comes back with ``copies`` counting itself and its duplicates within this batch.
        """
        fresh, dups, _ = self._partition(items)
        return fresh, dups

    def _partition(self, items: Sequence[RawItem]) -> tuple[list[RawItem], list[tuple[RawItem, str]], list[bool]]:
        with self._lock:
            known = self._lookup(sorted({k for item in items for k in dedup_keys(item)}))
        batch: dict[str, int] = {}  # key -> index into fresh
        fresh: list[RawItem] = []
        copies: list[int] = []
        dups: list[tuple[RawItem, str]] = []
        flags: list[bool] = []
        for item in items:
            keys = dedup_keys(item)
            original = next((known[k] for k in keys if k in known), None)
            index = None if original is not None else next((batch[k] for k in keys if k in batch), None)
            if index is not None:
                copies[index] += 1
                original = fresh[index].id
                for key in keys:
                    batch.setdefault(key, index)
            if original is not None:
                dups.append((item, original))
                flags.append(True)
                continue
            batch.update(dict.fromkeys(keys, len(fresh)))
            fresh.append(item)
            copies.append(1)
            flags.append(False)
        fresh = [i if n == 1 else i.model_copy(update={"copies": n}) for i, n in zip(fresh, copies, strict=True)]
        return fresh, dups, flags

    def add_many(self, items: Iterable[RawItem], duplicates: Iterable[tuple[RawItem, str]] = ()) -> None:
        """Mark ``items`` as seen, and the keys of ``duplicates`` as belonging to the id they repeat.

        Idempotent: the first item to claim a key keeps it.
        """
        now = time.time()
        rows = [(k, item.id, item.source, now) for item in items for k in dedup_keys(item)]
        rows += [(k, original, item.source, now) for item, original in duplicates for k in dedup_keys(item)]
        if not rows:
            return
        with self._lock, self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO seen(key, item_id, source, first_seen) VALUES (?,?,?,?)", rows)

    def seen_or_add(self, item: RawItem) -> bool:
        """True when ``item`` is a duplicate; otherwise remember it and return False."""
        return self.seen_or_add_many([item])[0]

    def seen_or_add_many(self, items: Sequence[RawItem]) -> list[bool]:
        """Batch form of :meth:`seen_or_add`: one flag per item, duplicates within the batch included."""
        fresh, dups, flags = self._partition(items)
        self.add_many(fresh, dups)
        return flags

    def checkpoint(self, source: str, file: str) -> Checkpoint | None:
        """The checkpoint of ``file`` of ``source``, or None when it was never read."""
        try:
            row = self._db().execute(
                "SELECT mtime_ns, size, items, last_item_id FROM checkpoints WHERE source=? AND file=?",
                (source, file),
            ).fetchone()
        except sqlite3.Error as exc:
            raise DedupStoreError(f"ingest state read from {self.path} failed: {exc}") from exc
        return Checkpoint(source, file, row[0], row[1], row[2], row[3]) if row else None

    def save_checkpoints(self, checkpoints: Iterable[Checkpoint]) -> None:
        """Record that these files were read and their items published."""
        now = time.time()
        rows = [(c.source, c.file, c.mtime_ns, c.size, c.items, c.last_item_id, now) for c in checkpoints]
        if not rows:
            return
        with self._lock, self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO checkpoints(source, file, mtime_ns, size, items, last_item_id, updated_at) "
                "VALUES (?,?,?,?,?,?,?)",
                rows,
            )

    def count(self) -> int:
        """How many keys are remembered."""
        (n,) = self._db().execute("SELECT COUNT(*) FROM seen").fetchone()
        return int(n)

    def close(self) -> None:
        """Close the connection; the next call reopens it."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
