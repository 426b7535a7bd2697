"""The embedded bus: an append-only log per topic in one SQLite file (WAL mode).

Several processes on one machine may publish and consume at once: each offset range is
assigned inside an ``IMMEDIATE`` transaction, and committed positions live per consumer
group. Like a single-partition Kafka topic, one member of a group reads a topic at a time:
a member holds a lease that it renews as it polls (at most every tenth of the lease, and at
most once a second: an idle poll loop is not a stream of synced writes); when it dies, the lease
expires and another member takes over from the last committed position (at-least-once).

Written by hand because no maintained library offers a durable, multi-process, offset-based
log on SQLite with consumer groups (persist-queue and litequeue delete on ack, so two groups
cannot each see every message).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from finsentinel.bus.base import Headers, Record
from finsentinel.errors import BusError
from finsentinel.sqlite_tx import immediate

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, next_offset INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS messages (
    topic TEXT NOT NULL, off INTEGER NOT NULL, key BLOB, value BLOB NOT NULL,
    headers TEXT, ts INTEGER NOT NULL, PRIMARY KEY (topic, off)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, off INTEGER NOT NULL, PRIMARY KEY (grp, topic));
CREATE TABLE IF NOT EXISTS group_leases (
    grp TEXT NOT NULL, topic TEXT NOT NULL, owner TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (grp, topic));
"""

AUTO_FLUSH = 1000

_Row = tuple[str, bytes | None, bytes, str | None, int]


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
    except (sqlite3.Error, OSError) as exc:
        raise BusError(f"cannot open the local bus at {path}: {exc}; check bus.local.path is writable") from exc
    return conn


@contextmanager
def _tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        with immediate(conn):
            yield conn
    except sqlite3.Error as exc:
        raise BusError(f"local bus write failed: {exc}") from exc


def _encode_headers(headers: Headers) -> str | None:
    return json.dumps([[k, v.hex()] for k, v in headers]) if headers else None


def _decode_headers(raw: str | None) -> Headers:
    return tuple((k, bytes.fromhex(v)) for k, v in json.loads(raw)) if raw else ()


class LocalBus:
    """SQLite-backed implementation of :class:`finsentinel.bus.base.Bus`."""

    def __init__(self, path: str | Path, lease_s: float = 10.0) -> None:
        self.path = Path(path)
        self.lease_s = lease_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # Records not yet flushed, per publishing thread: each thread's flush writes (and answers for)
        # its own. With one shared list, a thread whose flush failed dropped another thread's records,
        # and that thread's flush then returned as if they were durable (and its input was committed).
        self._pending: dict[int, list[_Row]] = {}

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self.path)
        return self._conn

    def ensure_topics(self, topics: Sequence[str]) -> None:
        with self._lock, _tx(self._db()) as db:
            db.executemany("INSERT OR IGNORE INTO topics(name) VALUES (?)", [(t,) for t in topics])

    def publish(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()) -> None:
        if not isinstance(value, bytes | bytearray):
            raise BusError(f"publish to {topic}: expected bytes, got {type(value).__name__}")
        with self._lock:
            pending = self._pending.setdefault(threading.get_ident(), [])
            pending.append((topic, key, bytes(value), _encode_headers(headers), int(time.time() * 1000)))
            full = len(pending) >= AUTO_FLUSH
        if full:
            self.flush()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Write the records this thread published since its last flush (other threads flush their own)."""
        with self._lock:
            pending = self._pending.pop(threading.get_ident(), [])
            if not pending:
                return
            # Like Kafka's producer, a failed flush drops the batch and reports it: the caller has
            # not committed its input, so the batch is redone rather than published twice.
            self._append(pending)

    def _append(self, pending: list[_Row]) -> None:
        with _tx(self._db()) as db:
            by_topic: dict[str, list[_Row]] = {}
            for row in pending:
                by_topic.setdefault(row[0], []).append(row)
            for topic, rows in by_topic.items():
                db.execute("INSERT OR IGNORE INTO topics(name) VALUES (?)", (topic,))
                (start,) = db.execute("SELECT next_offset FROM topics WHERE name=?", (topic,)).fetchone()
                db.executemany(
                    "INSERT INTO messages(topic, off, key, value, headers, ts) VALUES (?,?,?,?,?,?)",
                    [(topic, start + i, k, v, h, ts) for i, (_, k, v, h, ts) in enumerate(rows)],
                )
                db.execute("UPDATE topics SET next_offset=? WHERE name=?", (start + len(rows), topic))

    def consumer(self, group: str, topics: Sequence[str]) -> LocalConsumer:
        if not topics:
            raise BusError(f"consumer group {group!r}: expected at least one topic, got none")
        return LocalConsumer(self.path, group, list(topics), self.lease_s)

    def end_offsets(self, topics: Sequence[str]) -> dict[str, int]:
        """Next offset of each topic (how many records it holds)."""
        with self._lock:
            rows = dict(self._db().execute("SELECT name, next_offset FROM topics").fetchall())
        return {t: int(rows.get(t, 0)) for t in topics}

    def close(self) -> None:
        """Write what every thread left unflushed, then close the connection."""
        with self._lock:
            pending = [row for rows in self._pending.values() for row in rows]
            self._pending.clear()
            try:
                if pending:
                    self._append(pending)
            finally:  # a failed last write is reported, and the connection is closed all the same
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None


def _member_id() -> str:
    """``host:pid:random``: unique, and lets a member on the same host see that a holder died."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _holder_is_dead(member: str) -> bool:
    """True when ``member`` ran on this host in a process that no longer exists (killed, crashed).

    Its lease is then taken at once instead of after ``lease_s``, so a worker restarted after
    SIGKILL resumes from the committed position without waiting.
    """
    host, _, rest = member.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


class LocalConsumer:
    """One member of a consumer group on the local bus."""

    def __init__(self, path: Path, group: str, topics: list[str], lease_s: float) -> None:
        self.path, self.group, self.topics, self.lease_s = path, group, topics, lease_s
        self.member = _member_id()
        self._conn: sqlite3.Connection | None = None
        self._owned: set[str] = set()
        self._position: dict[str, int] = {}
        self._next_topic = 0
        self._renew_s = min(1.0, lease_s / 10)
        self._claimed_at = float("-inf")

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self.path)
        return self._conn

    def _claim(self) -> None:
        """Acquire or renew the lease of each topic; (re)load positions of newly won topics."""
        now = time.time()
        with _tx(self._db()) as db:
            for topic in self.topics:
                row = db.execute(
                    "SELECT owner, expires FROM group_leases WHERE grp=? AND topic=?", (self.group, topic)
                ).fetchone()
                if row is None or row[0] == self.member or row[1] < now or _holder_is_dead(row[0]):
                    db.execute(
                        "INSERT OR REPLACE INTO group_leases(grp, topic, owner, expires) VALUES (?,?,?,?)",
                        (self.group, topic, self.member, now + self.lease_s),
                    )
                    if topic not in self._owned:
                        committed = db.execute(
                            "SELECT off FROM group_offsets WHERE grp=? AND topic=?", (self.group, topic)
                        ).fetchone()
                        self._position[topic] = committed[0] if committed else 0
                        self._owned.add(topic)
                elif topic in self._owned:
                    log.warning("group %s lost topic %s to another member", self.group, topic)
                    self._owned.discard(topic)
                    self._position.pop(topic, None)

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() - self._claimed_at >= self._renew_s:
                self._claim()
                self._claimed_at = time.monotonic()
            records = self._read(max_records)
            if records or time.monotonic() >= deadline:
                return records
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _read(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        owned = [t for t in self.topics if t in self._owned]
        for i in range(len(owned)):
            topic = owned[(self._next_topic + i) % len(owned)]
            if len(out) >= max_records:
                break
            try:
                rows = self._db().execute(
                    "SELECT off, key, value, headers, ts FROM messages WHERE topic=? AND off>=? ORDER BY off LIMIT ?",
                    (topic, self._position[topic], max_records - len(out)),
                ).fetchall()
            except sqlite3.Error as exc:
                raise BusError(f"local bus read failed: {exc}") from exc
            out.extend(Record(topic, 0, off, k, v, _decode_headers(h), ts) for off, k, v, h, ts in rows)
            if rows:
                self._position[topic] = rows[-1][0] + 1
        self._next_topic += 1
        return out

    def commit(self) -> None:
        with _tx(self._db()) as db:
            for topic in list(self._owned):
                row = db.execute(
                    "SELECT owner, expires FROM group_leases WHERE grp=? AND topic=?", (self.group, topic)
                ).fetchone()
                if row is None or row[0] != self.member:
                    raise BusError(
                        f"commit for group {self.group!r} on {topic}: another member owns the topic now; "
                        "the records will be delivered to it again"
                    )
                db.execute(
                    "INSERT OR REPLACE INTO group_offsets(grp, topic, off) VALUES (?,?,?)",
                    (self.group, topic, self._position[topic]),
                )

    def committed(self) -> dict[str, int]:
        """The group's committed positions."""
        rows = self._db().execute("SELECT topic, off FROM group_offsets WHERE grp=?", (self.group,)).fetchall()
        return {t: o for t, o in rows if t in self.topics}

    def close(self) -> None:
        if self._conn is None:
            return
        try:
            with _tx(self._conn) as db:
                db.execute("DELETE FROM group_leases WHERE grp=? AND owner=?", (self.group, self.member))
        finally:
            self._conn.close()
            self._conn = None
            self._owned.clear()
