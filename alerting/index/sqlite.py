"""The embedded index: scored items, their companies, a full-text index and alerts in one SQLite file.

Full-text search uses FTS5 with the ``trigram`` tokenizer, which indexes every three-character
window: Chinese has no spaces between words, so word tokenizers cannot find 暴雷 inside
公司暴雷事件, while trigrams find any substring in any language. Terms shorter than three
characters (most Chinese words are two) fall back to ``LIKE`` on the same FTS table.
Text is stored and searched after :func:`normalise_text` (NFKC, case-folded), so full-width
letters and case do not matter. Only the title and the first ``search_chars`` characters of
the body are indexed: trigram indexing costs about 0.15 ms per 1,000 characters, and a
20,000-character article would otherwise cost more than the rest of its write.

Written on the standard library's sqlite3 because the embedded backend must need no server;
the Elasticsearch backend comes beside it later.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerting.index.base import BucketCount, QueryOrder, Scope
from alerting.index.text import search_terms, search_text
from finsentinel.errors import IndexStoreError, SchemaError
from finsentinel.schema import Alert, Label, ScoredItem, Sentiment
from finsentinel.sqlite_tx import immediate

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MIN_TRIGRAM = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, pub_us INTEGER NOT NULL,
    source TEXT NOT NULL, lang TEXT NOT NULL, topic TEXT NOT NULL, sentiment TEXT NOT NULL,
    score REAL NOT NULL, doc TEXT NOT NULL, fetch_us INTEGER);
CREATE INDEX IF NOT EXISTS items_pub ON items(pub_us);
CREATE INDEX IF NOT EXISTS items_topic_pub ON items(topic, pub_us);
CREATE TABLE IF NOT EXISTS item_entities (
    entity TEXT NOT NULL, pub_us INTEGER NOT NULL, rid INTEGER NOT NULL, negative INTEGER NOT NULL,
    positive INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entity, pub_us, rid)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS item_entities_rid ON item_entities(rid);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(text, tokenize='trigram', detail='none');
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, key TEXT, start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_start ON alerts(start_us);
CREATE TABLE IF NOT EXISTS labels (item_id TEXT PRIMARY KEY, created_us INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS labels_created ON labels(created_us);
"""

_UPSERT_ITEM = """
INSERT INTO items(id, pub_us, source, lang, topic, sentiment, score, doc, fetch_us) VALUES (?,?,?,?,?,?,?,?,?)
ON CONFLICT(id) DO UPDATE SET pub_us=excluded.pub_us, source=excluded.source, lang=excluded.lang,
    topic=excluded.topic, sentiment=excluded.sentiment, score=excluded.score, doc=excluded.doc,
    fetch_us=excluded.fetch_us
"""


def _migrate(db: sqlite3.Connection) -> None:
    """Bring an index written by an older version up to date: items' fetch times get a column, filled
    from the stored items, and its index (what live detection reads new items by); company rows get
    their positive flag, filled from their items. One transaction: a second process opening the file
    at the same time waits for it, then finds the columns."""
    with immediate(db):
        if "positive" not in {row[1] for row in db.execute("PRAGMA table_info(item_entities)")}:
            log.info("sqlite index: adding positive counts to the company rows of an older version")
            db.execute("ALTER TABLE item_entities ADD COLUMN positive INTEGER NOT NULL DEFAULT 0")
            db.execute("UPDATE item_entities SET positive = 1 WHERE rid IN "
                       "(SELECT rid FROM items WHERE sentiment = 'positive')")
        if "fetch_us" not in {row[1] for row in db.execute("PRAGMA table_info(items)")}:
            db.execute("ALTER TABLE items ADD COLUMN fetch_us INTEGER")
        filled = [(to_us(datetime.fromisoformat(when)), rid) for rid, when in
                  db.execute("SELECT rid, json_extract(doc, '$.fetched_at') FROM items WHERE fetch_us IS NULL")]
        if filled:
            log.info("sqlite index: filling the fetch-time column of %d items written by an older version",
                     len(filled))
            db.executemany("UPDATE items SET fetch_us=? WHERE rid=?", filled)
        db.execute("CREATE INDEX IF NOT EXISTS items_fetch ON items(fetch_us)")


# (pub_us - ((pub_us % :w) + :w) % :w) floors a time to its bucket start, also before 1970.
_B = "SELECT (pub_us - ((pub_us % :w) + :w) % :w) AS b"
_ITEM_SUMS = "COUNT(*), SUM(sentiment = 'negative'), SUM(sentiment = 'positive')"
_ENTITY_SUMS = "COUNT(*), SUM(negative), SUM(positive)"
_SPAN = "pub_us >= :s AND pub_us < :e"
_BUCKET_SQL: dict[str, str] = {
    "entity": f"{_B}, entity, {_ENTITY_SUMS} FROM item_entities WHERE {_SPAN} GROUP BY b, entity ORDER BY b, entity",
    "topic": f"{_B}, topic, {_ITEM_SUMS} FROM items WHERE {_SPAN} GROUP BY b, topic ORDER BY b, topic",
    "overall": f"{_B}, NULL, {_ITEM_SUMS} FROM items WHERE {_SPAN} GROUP BY b ORDER BY b",
}
# One key's buckets, through the (entity, pub_us) key and the (topic, pub_us) index.
_KEY_BUCKET_SQL: dict[str, str] = {
    "entity": f"{_B}, entity, {_ENTITY_SUMS} FROM item_entities WHERE entity = :k AND {_SPAN} GROUP BY b ORDER BY b",
    "topic": f"{_B}, topic, {_ITEM_SUMS} FROM items WHERE topic = :k AND {_SPAN} GROUP BY b ORDER BY b",
}


def _select(table: str, where: Sequence[str], order: str) -> str:
    """``SELECT doc`` with conditions; every fragment is a constant of this module, values are ``?``."""
    sql = f"SELECT doc FROM {table}"  # noqa: S608 - no caller-supplied text reaches the SQL
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + f" ORDER BY {order} LIMIT ?"


def _given(*conditions: tuple[str, Any]) -> tuple[list[str], list[Any]]:
    """The SQL conditions (constants of this module, ``?`` for the value) whose value is not None,
    and those values in order."""
    given = [(sql, value) for sql, value in conditions if value is not None]
    return [sql for sql, _ in given], [value for _, value in given]


def _us(value: datetime | None, name: str) -> int | None:
    return None if value is None else to_us(value, name)


def to_us(value: datetime, name: str = "time") -> int:
    """Microseconds since the UNIX epoch of an aware datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise IndexStoreError(
            f"{name}: expected a timezone-aware datetime, got naive {value.isoformat()}; "
            "pass e.g. datetime(..., tzinfo=UTC)"
        )
    return (value - _EPOCH) // _US


def from_us(value: int) -> datetime:
    """The aware UTC datetime of microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value)


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _text_filter(text: str) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``items.rid`` that every whitespace-separated term of ``text`` occurs.

    A ``LIKE`` without ``ESCAPE`` on a trigram FTS5 table is answered from the index; SQLite
    3.40 wrongly answers patterns shorter than three characters (two Chinese characters are
    six bytes) from it too and finds nothing, so those, and terms holding wildcards, carry an
    ``ESCAPE`` clause, which makes SQLite scan the table instead.
    """
    where: list[str] = []
    params: list[Any] = []
    for term in search_terms(text):
        if len(term) >= _MIN_TRIGRAM and not any(c in term for c in "%_\\"):
            where.append("rid IN (SELECT rowid FROM items_fts WHERE text LIKE ?)")
            params.append(f"%{term}%")
        else:
            where.append("rid IN (SELECT rowid FROM items_fts WHERE text LIKE ? ESCAPE '\\')")
            params.append(_like_pattern(term))
    return where, params


class SqliteIndex:
    """SQLite implementation of :class:`alerting.index.base.Index` (WAL mode, lazy connection)."""

    def __init__(self, path: str | Path, search_chars: int = 2000) -> None:
        self.path = Path(path)
        self.search_chars = search_chars
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    # -- plumbing ---------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: full-text segment merges stay in memory
                # Checkpoint every ~40 MiB of WAL instead of 4 MiB: a 500-item batch writes about 4 MiB,
                # and a checkpoint (two fsyncs) per batch halved bulk throughput.
                conn.execute("PRAGMA wal_autocheckpoint=10000")
                conn.execute("PRAGMA journal_size_limit=67108864")
                conn.executescript(_SCHEMA)
                _migrate(conn)
            except (sqlite3.Error, OSError, ValueError) as exc:
                raise IndexStoreError(
                    f"cannot open the sqlite index at {self.path}: {exc}; check that alerting.index.path "
                    "is a writable file path and that this SQLite has FTS5 (sqlite >= 3.34)"
                ) from exc
            self._conn = conn
        return self._conn

    @contextmanager
    def _guard(self, operation: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and translate sqlite3 errors into :class:`IndexStoreError`."""
        with self._lock:
            db = self._db()
            try:
                yield db
            except sqlite3.Error as exc:
                raise IndexStoreError(
                    f"sqlite index {self.path}: {operation} failed: {exc}; if the file is from another "
                    "FinSentinel version, delete it and replay the bus to rebuild it"
                ) from exc

    @contextmanager
    def _write(self, operation: str) -> Iterator[sqlite3.Connection]:
        with self._guard(operation) as db, immediate(db):
            yield db

    def _decode_item(self, doc: str) -> ScoredItem:
        try:
            return ScoredItem.from_json(doc)
        except SchemaError as exc:
            raise IndexStoreError(
                f"sqlite index {self.path}: a stored item no longer parses ({exc}); delete the index "
                "and replay the bus to rebuild it"
            ) from exc

    # -- Index protocol ---------------------------------------------------------------------

    def ensure(self) -> None:
        """Open the file and create the tables (done on first use anyway); idempotent."""
        with self._guard("ensure") as db:
            db.executescript(_SCHEMA)

    def upsert(self, items: Sequence[ScoredItem]) -> int:
        """Write ``items`` in one transaction, replacing earlier versions with the same id."""
        latest = {item.id: item for item in items}  # the last version of an id in the batch wins
        if not latest:
            return 0
        rows = [
            (i.id, to_us(i.published_at), i.source, i.lang, i.topic, i.sentiment, i.sentiment_score,
             i.model_dump_json(), to_us(i.fetched_at))
            for i in latest.values()
        ]
        with self._write("upsert") as db:
            db.executemany(_UPSERT_ITEM, rows)
            rids = dict(
                db.execute(
                    "SELECT id, rid FROM items WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(list(latest)),),
                ).fetchall()
            )
            fts_rows = [(rids[i.id], search_text(i, self.search_chars)) for i in latest.values()]
            entity_rows = [
                (e, pub, rids[i.id], int(i.sentiment == "negative"), int(i.sentiment == "positive"))
                for i, (_, pub, *_rest) in zip(latest.values(), rows, strict=True)
                for e in sorted(set(i.entities))
            ]
            db.executemany("DELETE FROM item_entities WHERE rid=?", [(r,) for r, _ in fts_rows])
            db.executemany("INSERT OR REPLACE INTO items_fts(rowid, text) VALUES (?,?)", fts_rows)
            db.executemany(
                "INSERT INTO item_entities(entity, pub_us, rid, negative, positive) VALUES (?,?,?,?,?)", entity_rows
            )
        return len(latest)

    def count(self) -> int:
        with self._guard("count") as db:
            (n,) = db.execute("SELECT COUNT(*) FROM items").fetchone()
        return int(n)

    def get(self, id: str) -> ScoredItem | None:
        with self._guard("get") as db:
            row = db.execute("SELECT doc FROM items WHERE id=?", (id,)).fetchone()
        return None if row is None else self._decode_item(row[0])

    def query(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        entity: str | None = None,
        topic: str | None = None,
        sentiment: Sentiment | None = None,
        text: str | None = None,
        limit: int | None = 100,
        fetched_after: datetime | None = None,
        order: QueryOrder = "newest",
    ) -> list[ScoredItem]:
        where, params = _given(
            ("pub_us >= ?", _us(start, "query start")), ("pub_us < ?", _us(end, "query end")),
            ("fetch_us > ?", _us(fetched_after, "query fetched_after")),
            ("rid IN (SELECT rid FROM item_entities WHERE entity=?)", entity), ("topic = ?", topic),
            ("sentiment = ?", sentiment))
        if text is not None and text.strip():
            text_where, text_params = _text_filter(text)
            where += text_where
            params += text_params
        sql = _select("items", where, "fetch_us, id" if order == "fetched" else "pub_us DESC, id")
        params.append(-1 if limit is None else limit)
        with self._guard("query") as db:
            rows = db.execute(sql, params).fetchall()
        return [self._decode_item(doc) for (doc,) in rows]

    def bucket_counts(
        self, start: datetime, end: datetime, bucket_minutes: int, by: Scope, key: str | None = None
    ) -> list[BucketCount]:
        if bucket_minutes <= 0:
            raise IndexStoreError(f"bucket_counts: expected bucket_minutes > 0, got {bucket_minutes}")
        width = bucket_minutes * 60_000_000
        sql = _BUCKET_SQL.get(by)
        if sql is None:
            raise IndexStoreError(f"bucket_counts: expected by='entity', 'topic' or 'overall', got {by!r}")
        params: dict[str, Any] = {
            "w": width, "s": to_us(start, "bucket_counts start"), "e": to_us(end, "bucket_counts end"), "k": key}
        if key is not None and by != "overall":
            sql = _KEY_BUCKET_SQL[by]
        with self._guard("bucket_counts") as db:
            rows = db.execute(sql, params).fetchall()
        return [BucketCount(from_us(b), k, int(total), int(neg), int(pos)) for b, k, total, neg, pos in rows]

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        rows = [
            (a.id, a.scope, a.entity if a.scope == "entity" else a.topic,
             to_us(a.start), to_us(a.end), a.model_dump_json())
            for a in alerts
        ]
        if not rows:
            return
        with self._write("upsert_alerts") as db:
            db.executemany(
                "INSERT OR REPLACE INTO alerts(id, scope, key, start_us, end_us, doc) VALUES (?,?,?,?,?,?)", rows
            )

    def alerts(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        scope: Scope | None = None,
        key: str | None = None,
        limit: int | None = 100,
    ) -> list[Alert]:
        where, params = _given(("end_us > ?", _us(start, "alerts start")), ("start_us < ?", _us(end, "alerts end")),
                               ("scope = ?", scope), ("key = ?", key))
        sql = _select("alerts", where, "start_us DESC, id")
        params.append(-1 if limit is None else limit)
        with self._guard("alerts") as db:
            rows = db.execute(sql, params).fetchall()
        try:
            return [Alert.from_json(doc) for (doc,) in rows]
        except SchemaError as exc:
            raise IndexStoreError(
                f"sqlite index {self.path}: a stored alert no longer parses ({exc}); re-run detection"
            ) from exc

    def upsert_labels(self, labels: Sequence[Label]) -> None:
        rows = [(label.item_id, to_us(label.created_at), label.model_dump_json()) for label in labels]
        if rows:
            with self._write("upsert_labels") as db:
                db.executemany("INSERT OR REPLACE INTO labels(item_id, created_us, doc) VALUES (?,?,?)", rows)

    def labels(self, since: datetime | None = None, limit: int | None = None,
               item_id: str | None = None) -> list[Label]:
        where, params = _given(("created_us >= ?", _us(since, "labels since")), ("item_id = ?", item_id))
        with self._guard("labels") as db:
            rows = db.execute(_select("labels", where, "created_us DESC, item_id"),
                              [*params, -1 if limit is None else limit]).fetchall()
        try:
            return [Label.from_json(doc) for (doc,) in rows]
        except SchemaError as exc:
            raise IndexStoreError(f"sqlite index {self.path}: a stored label no longer parses ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
