"""One SQLite write transaction, shared by the embedded stores (local bus, index, ingest state)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` on an autocommit connection (``isolation_level=None``): the write lock
    is taken at once, so a second writer waits (up to the connection's timeout) instead of failing
    half-way; ``COMMIT`` on success, ``ROLLBACK`` on any exception, which propagates."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
