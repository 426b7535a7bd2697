"""The ingest state store: exact dedup by canonical URL and content hash, fingerprints, copies, source state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finsentinel.schema import RawItem, content_id
from ingest.dedup import DedupStore, DedupStoreError, dedup_keys
from ingest.health import Health
from ingest.neardup import Fingerprint
from ingest.sources.base import Checkpoint

WHEN = datetime(2026, 3, 2, 10, tzinfo=UTC)


def raw(title: str, url: str | None = None, body: str = "", source: str = "s") -> RawItem:
    return RawItem(id=content_id(url, title, body), source=source, url=url, title=title, body=body, lang="en",
                   published_at=WHEN, fetched_at=WHEN)


def test_constructor_does_no_io(tmp_path: Path) -> None:
    DedupStore(tmp_path / "deep" / "state.db")
    assert not (tmp_path / "deep").exists()


def test_canonical_url_dedup_ignores_tracking_params(tmp_path: Path) -> None:
    store = DedupStore(tmp_path / "s.db")
    assert store.seen_or_add(raw("Kestrel Cloud opens region", "https://w.example/a/kestrel?id=7")) is False
    again = raw("Kestrel Cloud opens new region (updated)", "HTTPS://W.example/a/kestrel/?utm_source=x&id=7#top")
    assert store.seen_or_add(again) is True
    assert store.seen_or_add(raw("Kestrel Cloud prices notes", "https://w.example/a/kestrel?id=8")) is False


def test_content_hash_dedup_across_urls(tmp_path: Path) -> None:
    store = DedupStore(tmp_path / "s.db")
    assert not store.seen_or_add(raw("Meridian Foods recalls snacks", "https://a.example/1", "Labelling error."))
    mirror = raw("  MERIDIAN Foods   recalls snacks ", "https://b.example/9", "Labelling  error.")
    assert store.seen_or_add(mirror) is True
    assert not store.seen_or_add(raw("Meridian Foods recalls snacks", "https://c.example/2", "Another body."))


def test_items_without_url_dedup_by_text(tmp_path: Path) -> None:
    store = DedupStore(tmp_path / "s.db")
    assert store.seen_or_add_many([raw("$AURM to the moon"), raw("$aurm  to the moon"), raw("$KSTL")]) == [
        False, True, False]
    item = raw("x")
    assert dedup_keys(item) == ("id:" + item.id, dedup_keys(raw("x", "https://u.example"))[1])
    assert dedup_keys(item)[1].startswith("text:") and dedup_keys(raw("x", "https://u.example"))[0] != dedup_keys(item)[0]


def test_split_counts_copies_and_writes_nothing(tmp_path: Path) -> None:
    store = DedupStore(tmp_path / "s.db")
    a = raw("Story A", "https://a.example/1", "body a")
    a_utm = raw("Story A", "https://a.example/1?utm_medium=rss", "body a", source="t")
    a_mirror = raw("Story A", "https://mirror.example/77", "body a", source="u")
    b = raw("Story B", "https://a.example/2", "body b")
    fresh, dups = store.split([a, a_utm, b, a_mirror])
    assert [(i.id, i.copies) for i in fresh] == [(a.id, 3), (b.id, 1)]
    assert [(d.source, original) for d, original in dups] == [("t", a.id), ("u", a.id)]
    assert store.count() == 0  # split only looks
    store.add_many(fresh, dups)
    assert store.is_seen(a_mirror) and store.is_seen(b)
    fresh, dups = store.split([a_mirror, raw("Story C", "https://a.example/3")])
    assert [i.title for i in fresh] == ["Story C"] and [o for _, o in dups] == [a.id]


def test_memory_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = DedupStore(path)
    first.add_many([raw("Story A", "https://a.example/1")])
    first.close()
    second = DedupStore(path)
    assert second.is_seen(raw("Story A", "https://a.example/1?utm_source=t"))
    assert not second.is_seen(raw("Story B", "https://a.example/2"))


def test_large_batches_are_chunked(tmp_path: Path) -> None:
    store = DedupStore(tmp_path / "s.db")
    items = [raw(f"Story {i}", f"https://a.example/{i}") for i in range(1200)]
    store.add_many(items[:700])
    fresh, dups = store.split(items)
    assert len(fresh) == 500 and len(dups) == 700


def test_commit_records_everything_in_one_transaction(tmp_path: Path) -> None:
    store = DedupStore(tmp_path / "s.db")
    a = raw("Story A", "https://a.example/1", "body a").model_copy(update={"copies": 2})
    mirror = raw("Story A", "https://m.example/9", "body a", source="m")
    fp = Fingerprint.build(np.arange(48, dtype=np.uint32), "storya", ["$AURM"], WHEN.timestamp())
    cp = Checkpoint(etag='"v1"', cursor="c9", files={"/f.xml": (1, 2)})
    store.commit([a], [(mirror, a.id)], [(a.id, fp)], {"older": 3}, {"wire": cp}, {"wire": Health(fetched=4)})
    assert store.is_seen(mirror) and store.copies(a.id) == 2 and store.copies("older") == 3
    [(item_id, loaded)] = store.fingerprints(horizon_s=3600)
    assert item_id == a.id and loaded.title == "storya" and loaded.hints == {"$AURM"}
    assert (loaded.signature == fp.signature).all() and loaded.title_grams == fp.title_grams
    store.commit([], late_copies={"older": 1}, checkpoints={"wire": replace(cp, cursor="c10")})
    reopened = DedupStore(tmp_path / "s.db")
    checkpoint, health = reopened.source_states()["wire"]
    assert checkpoint.cursor == "c10" and checkpoint.files == {"/f.xml": (1, 2)} and health.fetched == 4
    assert reopened.copies("older") == 4 and reopened.copies("never") == 0


def test_late_copies_count_new_urls_not_redeliveries(tmp_path: Path) -> None:
    store = DedupStore(tmp_path / "s.db")
    a = raw("Story A", "https://a.example/1", "body a")
    store.commit([a])
    split = store.partition([a, raw("Story A", "https://b.example/2", "body a", source="b"),
                             raw("Story A", "https://b.example/2", "body a", source="b")])
    assert split.fresh == [] and len(split.duplicates) == 3 and split.late_copies == {a.id: 1}


def test_fingerprints_are_pruned_by_age(tmp_path: Path) -> None:
    store = DedupStore(tmp_path / "s.db")
    sig = np.zeros(48, dtype=np.uint32)
    store.commit([], fingerprints=[("old", Fingerprint.build(sig, "t", [], 1000.0)),
                                   ("new", Fingerprint.build(sig, "t", [], 100000.0))])
    assert [i for i, _ in store.fingerprints(horizon_s=3600)] == ["new"]
    assert store.prune_fingerprints(before=5000.0) == 1
    assert [i for i, _ in store.fingerprints(horizon_s=10**9)] == ["new"]


def test_fingerprints_keep_titles_facts_and_an_older_state_file_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "s.db"
    with sqlite3.connect(path) as old:  # the table as written before titles' facts were kept
        old.execute("CREATE TABLE fingerprints (item_id TEXT PRIMARY KEY, published REAL NOT NULL, "
                    "signature BLOB NOT NULL, title BLOB NOT NULL, hints TEXT NOT NULL) WITHOUT ROWID")
        old.execute("INSERT INTO fingerprints VALUES ('old', 1000.0, ?, ?, '')", (bytes(4 * 48), b"t"))
    old.close()
    store = DedupStore(path)
    sig = np.zeros(48, dtype=np.uint32)
    store.commit([], fingerprints=[("new", Fingerprint.build(sig, "t", [], 2000.0, facts="+5|up"))])
    assert {i: f.facts for i, f in store.fingerprints(horizon_s=10**9)} == {"old": None, "new": "+5|up"}
    store.close()


def test_unwritable_state_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = DedupStore(blocker / "state.db")
    with pytest.raises(DedupStoreError, match="ingest.state_path"):
        store.is_seen(raw("x"))


def test_repeat_of_a_near_duplicate_points_at_the_published_original(tmp_path: Path) -> None:
    # Two outlets carry the same rewritten copy of an earlier story in one batch: the second is an exact
    # duplicate of the first, the first a near-duplicate of the story. Neither copy is published, so
    # the second (and its keys in the state file) must point at the story, not at the first copy.
    from finsentinel.bus.local import LocalBus
    from finsentinel.settings import IngestSettings
    from ingest.pipeline import Pipeline

    body = ("Kestrel Cloud said on Monday it had signed a five-year agreement to supply data centre capacity "
            "to Velora Retail, its largest contract so far, sending its shares up eight percent in early trade.")
    story = raw("Kestrel Cloud signs five-year deal with Velora", "https://w.example/k1", body)
    copy1 = raw("UPDATE 1-Kestrel Cloud signs five-year deal with Velora", "https://a.example/1", body)
    copy2 = raw(copy1.title, "https://b.example/2", body)  # the same text under another URL
    copy3 = raw(copy1.title, "https://c.example/3", body)  # and again, in a later batch
    decisions: list[tuple[str, str, str]] = []
    store = DedupStore(tmp_path / "s.db")
    pipeline = Pipeline(IngestSettings(state_path=tmp_path / "s.db"), store, LocalBus(tmp_path / "bus.db"), "raw",
                        lambda item, original, how: decisions.append((item.url or "", original, how)))
    assert [i.id for i in pipeline.process([story]).published] == [story.id]
    assert pipeline.process([copy1, copy2]).published == []
    assert pipeline.process([copy2, copy3]).published == []
    assert decisions == [("https://b.example/2", story.id, "exact"), ("https://a.example/1", story.id, "near"),
                         ("https://b.example/2", story.id, "exact"), ("https://c.example/3", story.id, "exact")]
    assert store.copies(story.id) == 4 and store.copies(copy1.id) == 0


def test_a_batch_that_crashes_during_near_dup_matching_is_published_when_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Near-dup matching indexes each kept item as it goes. When it raises part-way through a batch
    # (a bug on an odd item), the items indexed so far were never published: the retried batch must
    # publish them, not drop them as near-duplicates of themselves.
    from finsentinel.bus.local import LocalBus
    from finsentinel.settings import IngestSettings
    from ingest.pipeline import Pipeline

    first = raw("Kestrel Cloud signs five-year deal with Velora", "https://w.example/k1",
                "Kestrel Cloud said on Monday it had signed a five-year agreement to supply data centre capacity "
                "to Velora Retail, its largest contract so far.")
    second = raw("Aurora Motors recalls 48,000 SUVs", "https://w.example/a1",
                 "Aurora Motors said on Tuesday it would recall 48,000 Lumina SUVs because a battery module may "
                 "overheat while charging.")
    store = DedupStore(tmp_path / "s.db")
    pipeline = Pipeline(IngestSettings(state_path=tmp_path / "s.db"), store, LocalBus(tmp_path / "bus.db"), "raw")
    assert pipeline.index is not None
    made = pipeline.index.fingerprint

    def crash_on_second(title: str, *args: Any) -> Fingerprint | None:
        if title == second.title:
            raise RuntimeError("fingerprinting crashed")
        return made(title, *args)

    monkeypatch.setattr(pipeline.index, "fingerprint", crash_on_second)
    with pytest.raises(RuntimeError, match="fingerprinting crashed"):
        pipeline.process([first, second])
    assert first.id not in pipeline.index and store.count() == 0
    monkeypatch.undo()
    out = pipeline.process([first, second])
    assert [i.id for i in out.published] == [first.id, second.id] and out.near_duplicates == []


def test_the_earliest_item_of_a_story_in_a_batch_is_published_whatever_the_order(tmp_path: Path) -> None:
    # One pass batches every source together, in the order of the settings. A syndicated copy that a
    # source listed first carries must not be published in place of the story it copies, nor may the
    # order decide how many stories come out (a copy of a copy that is not a copy of the story).
    from finsentinel.bus.local import LocalBus
    from finsentinel.settings import IngestSettings
    from ingest.pipeline import Pipeline

    body = ("Kestrel Cloud said on Monday it had signed a five-year agreement to supply data centre capacity "
            "to Velora Retail, its largest contract so far, sending its shares up eight percent in early trade.")
    story = raw("Kestrel Cloud signs five-year deal with Velora", "https://w.example/k1", body, source="wire")
    copy = raw("UPDATE 1-Kestrel Cloud signs five-year deal with Velora", "https://a.example/1",
               f"By Maria Lindqvist\n{body}\nReporting by Tom Reilly", source="aggregator")
    copy = copy.model_copy(update={"published_at": WHEN + timedelta(hours=2)})
    mirror = raw(story.title, "https://m.example/9", body, source="mirror")
    mirror = mirror.model_copy(update={"published_at": WHEN + timedelta(hours=1)})
    results = []
    for n, batch in enumerate(([copy, mirror, story], [story, copy, mirror], [mirror, copy, story])):
        pipeline = Pipeline(IngestSettings(state_path=tmp_path / f"{n}.db"), DedupStore(tmp_path / f"{n}.db"),
                            LocalBus(tmp_path / f"{n}.bus"), "raw")
        out = pipeline.process(batch)
        results.append([(i.url, i.copies) for i in out.published])
    assert results == [[("https://w.example/k1", 3)]] * 3
