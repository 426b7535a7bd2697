"""The SQLite index: the shared index contract plus what only the embedded file promises."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerting.index import make_index
from alerting.index.sqlite import SqliteIndex, from_us, to_us
from finsentinel.errors import IndexStoreError
from finsentinel.settings import IndexSettings
from tests.contract.index import MIN, T0, IndexContract, make_alert, scored


class TestSqliteIndexContract(IndexContract):
    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[SqliteIndex]:
        index = SqliteIndex(tmp_path / "index.sqlite3")
        yield index
        index.close()


def test_make_index_builds_sqlite_without_touching_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "var" / "index.sqlite3"
    index = make_index(IndexSettings(backend="sqlite", path=path))
    assert isinstance(index, SqliteIndex)
    assert not path.parent.exists()  # constructors do no I/O
    index.ensure()
    assert path.exists()
    index.close()


def test_items_persist_across_instances_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    writer, reader = SqliteIndex(path), SqliteIndex(path)
    writer.upsert([scored(1, "极光汽车召回", lang="zh")])
    assert reader.count() == 1
    assert reader.get("item-000001") == writer.get("item-000001")
    writer.close()
    reader.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unopenable_path_raises_index_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    index = SqliteIndex(blocker / "index.sqlite3")
    with pytest.raises(IndexStoreError, match="cannot open the sqlite index"):
        index.count()


def test_sqlite_errors_are_translated(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    index = SqliteIndex(path)
    index.ensure()
    with sqlite3.connect(path) as raw:
        raw.execute("DROP TABLE items")
    with pytest.raises(IndexStoreError, match="query failed: no such table"):
        index.query()
    with pytest.raises(IndexStoreError, match="upsert failed"):
        index.upsert([scored(1)])
    index.close()


def test_a_stored_document_that_no_longer_parses_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    index = SqliteIndex(path)
    index.upsert([scored(1)])
    index.upsert_alerts([make_alert()])
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE items SET doc='{\"schema_version\": 9}'")
        raw.execute("UPDATE alerts SET doc='{}'")
    with pytest.raises(IndexStoreError, match="no longer parses"):
        index.get("item-000001")
    with pytest.raises(IndexStoreError, match="re-run detection"):
        index.alerts()
    index.close()


def test_naive_datetimes_are_rejected(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path / "index.sqlite3")
    with pytest.raises(IndexStoreError, match="timezone-aware"):
        index.query(start=datetime(2026, 1, 1))  # noqa: DTZ001 - the mistake under test
    with pytest.raises(IndexStoreError, match="bucket_minutes > 0"):
        index.bucket_counts(T0, T0, 0, "overall")
    with pytest.raises(IndexStoreError, match="expected by="):
        index.bucket_counts(T0, T0, 60, "company")  # type: ignore[arg-type]
    index.close()


def test_time_conversion_round_trips_before_and_after_the_epoch() -> None:
    for when in (T0, T0 - timedelta(days=30_000), T0 + timedelta(microseconds=7)):
        assert from_us(to_us(when)) == when


def test_buckets_before_1970_floor_correctly(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path / "index.sqlite3")
    old = datetime(1969, 12, 31, 9, tzinfo=UTC)  # before the epoch: integer division must floor
    item = scored(1).model_copy(update={"published_at": old - timedelta(minutes=1)})
    index.upsert([item])
    (bucket,) = index.bucket_counts(old - timedelta(hours=2), old, 60, "overall")
    assert bucket.start == old - timedelta(hours=1)
    index.close()


def test_search_covers_title_and_the_start_of_long_bodies(tmp_path: Path) -> None:
    index = make_index(IndexSettings(path=tmp_path / "index.sqlite3", search_chars=200))
    body = "opening paragraph mentions recall. " + "filler " * 100 + "late mention of bankruptcy"
    item = scored(1, "Aurora update", body)
    index.upsert([item])
    assert [i.id for i in index.query(text="recall")] == ["item-000001"]
    assert index.query(text="bankruptcy") == []
    assert index.get("item-000001") == item  # the whole item is stored
    index.close()


def test_an_index_written_before_fetch_times_had_a_column_gains_it_filled(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    index = SqliteIndex(path)
    index.upsert([scored(n, minutes=10 * n) for n in range(3)])  # fetched a minute after publication
    index.close()
    with sqlite3.connect(path) as db:  # the table as an older version wrote it
        db.execute("DROP INDEX items_fetch")
        db.execute("ALTER TABLE items DROP COLUMN fetch_us")
    db.close()
    index = SqliteIndex(path)
    assert [i.id for i in index.query(fetched_after=T0 + 5 * MIN)] == ["item-000002", "item-000001"]
    index.close()


def test_an_index_written_before_positive_counts_gains_them_filled(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    index = SqliteIndex(path)
    index.upsert([scored(1, sentiment="positive", entities=["aurora-motors"]),
                  scored(2, sentiment="negative", entities=["aurora-motors"]),
                  scored(3, sentiment="positive", entities=["aurora-motors", "lumen-pharma"])])
    index.close()
    with sqlite3.connect(path) as db:  # the company rows as an older version wrote them
        db.execute("ALTER TABLE item_entities DROP COLUMN positive")
    db.close()
    index = SqliteIndex(path)
    counts = index.bucket_counts(T0, T0 + 60 * MIN, 60, "entity")
    assert [(c.key, c.total, c.negative, c.positive) for c in counts] == [
        ("aurora-motors", 3, 1, 2), ("lumen-pharma", 1, 0, 1)]
    index.upsert([scored(4, sentiment="positive", entities=["lumen-pharma"])])  # new rows carry it too
    assert index.bucket_counts(T0, T0 + 60 * MIN, 60, "entity", key="lumen-pharma")[0].positive == 2
    index.close()
