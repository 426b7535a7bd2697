"""What each alert sink has delivered, kept in a SQLite file, so a restart re-sends what was lost.

Detection stores an alert in the index before the sinks deliver it from their queues; a process
stopped in between (a crash, a deploy, a webhook down at shutdown) would otherwise never deliver
it, because on restart the index already holds it. The ledger records, per sink, the version of
each alert that sink delivered; a restarted notifier compares the index's alerts with it and
queues, for each sink, only what that sink has not had (at-least-once delivery).

Hand-written over :mod:`sqlite3`: one small table, no library needed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from finsentinel.errors import ConfigError, SchemaError
from finsentinel.schema import Alert
from finsentinel.sqlite_tx import immediate

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS deliveries (sink TEXT NOT NULL, alert_id TEXT NOT NULL, alert TEXT NOT NULL, "
    "PRIMARY KEY (sink, alert_id))",
    "CREATE TABLE IF NOT EXISTS sinks (sink TEXT PRIMARY KEY)",  # every sink it keeps a record for
)


class DeliveryLedger:
    """Per sink key, the last version of each alert the sink delivered. Thread-safe; connects lazily."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
                conn.execute("SELECT 1 FROM sqlite_master").fetchall()  # a file that is no database fails here
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(f"cannot open the alert delivery ledger {self.path}: {exc}; "
                                  "check alerting.notify.ledger_path") from exc
            self._conn = conn
        return self._conn

    def _has_table(self, name: str = "deliveries") -> bool:
        return self._db().execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None

    def exists(self) -> bool:
        """Whether the ledger was made (and seeded) already; a new one is seeded with what was delivered before.

        Its table is created in the same transaction as its first rows, so a process killed while
        seeding it leaves a ledger that does not exist yet, not an empty one that would re-send every alert.
        """
        if not self.path.exists():
            return False
        with self._lock:
            return self._has_table()

    def delivered(self, key: str) -> dict[str, Alert]:
        """The alerts sink ``key`` delivered, by id, as delivered (a row that no longer parses is left out)."""
        with self._lock:
            if not self._has_table():
                return {}
            rows = self._db().execute("SELECT alert_id, alert FROM deliveries WHERE sink = ?", (key,)).fetchall()
        out: dict[str, Alert] = {}
        for alert_id, text in rows:
            try:
                out[alert_id] = Alert.from_json(text.encode("utf-8"))
            except SchemaError as exc:
                log.warning("ledger %s: alert %s of sink %s no longer parses (%s); it will be sent again",
                            self.path, alert_id, key, exc)
        return out

    def record(self, keys: Sequence[str], alerts: Iterable[Alert]) -> None:
        """Note ``alerts`` as delivered to every sink in ``keys`` (the newest version replaces the older)."""
        rows = [(key, a.id, a.to_json().decode("utf-8")) for a in alerts for key in keys]
        with self._lock, immediate(self._db()) as db:
            for statement in _SCHEMA:  # made even with nothing to record: a ledger that exists is not seeded again
                db.execute(statement)
            db.executemany("INSERT OR IGNORE INTO sinks (sink) VALUES (?)", [(key,) for key in keys])
            db.executemany("INSERT OR REPLACE INTO deliveries (sink, alert_id, alert) VALUES (?, ?, ?)", rows)

    def sinks(self) -> set[str]:
        """The sink keys this ledger has been keeping a record for (a sink not among them is new to it)."""
        with self._lock:
            if not self._has_table():
                return set()
            db = self._db()
            # a ledger from before the sinks table knows its sinks by their deliveries alone
            legacy = {k for (k,) in db.execute("SELECT DISTINCT sink FROM deliveries")}
            return legacy | ({k for (k,) in db.execute("SELECT sink FROM sinks")} if self._has_table("sinks") else set())

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
