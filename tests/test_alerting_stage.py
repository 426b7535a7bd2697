"""The alerting stage: the index handler in a worker, and detection over the index."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from alerting.detect import detect, detect_items
from alerting.index.base import BulkItemsError
from alerting.index.sqlite import SqliteIndex
from alerting.stage import LiveDetection, history_span, make_index_handler, run_detection
from finsentinel.bus.base import Record, dlq_topic
from finsentinel.bus.local import LocalBus
from finsentinel.errors import IndexStoreError
from finsentinel.schema import Alert, ScoredItem
from finsentinel.worker import StageWorker
from tests.contract.index import scored
from tests.test_alerting_detect import BURST_START, HOUR, SETTINGS, burst_scenario


class CountingIndex(SqliteIndex):
    """A SQLite index that records the size of every upsert call."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[int] = []

    def upsert(self, items: Sequence[ScoredItem]) -> int:
        self.calls.append(len(items))
        return super().upsert(items)


class ReadCountingIndex(SqliteIndex):
    """A SQLite index that records how many items each query returned."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[int] = []

    def query(self, *args: Any, **kwargs: Any) -> list[ScoredItem]:
        found = super().query(*args, **kwargs)
        self.reads.append(len(found))
        return found


T0_FETCH = BURST_START + 48 * HOUR


def record(offset: int, value: bytes) -> Record:
    return Record("news.scored", 0, offset, None, value)


def test_handler_upserts_valid_items_in_one_call_and_fails_bad_records(tmp_path: Path) -> None:
    index = CountingIndex(tmp_path / "index.sqlite3")
    handler = make_index_handler(index)
    batch = [
        record(0, scored(1).to_json()),
        record(1, b"not json"),
        record(2, scored(2).to_json()),
        record(3, b'{"schema_version": 1, "id": "x"}'),
        record(4, scored(1).to_json()),  # re-delivered
    ]
    outcomes = handler(batch)
    assert [o.error is None for o in outcomes] == [True, False, True, False, True]
    assert "not a valid ScoredItem" in (outcomes[1].error or "")
    assert all(o.outputs == () for o in outcomes)
    assert index.calls == [3]
    assert index.count() == 2
    assert handler([record(5, b"{}")])[0].error is not None
    assert index.calls == [3]  # nothing valid, no write
    index.close()


def test_handler_raises_when_the_index_fails_so_the_batch_is_retried(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    handler = make_index_handler(SqliteIndex(blocker / "index.sqlite3"))
    with pytest.raises(IndexStoreError):
        handler([record(0, scored(1).to_json())])


class RefusingIndex(SqliteIndex):
    """Writes every item except those whose title says "refuse", which it reports per item."""

    def upsert(self, items: Sequence[ScoredItem]) -> int:
        refused = {i.id: "mapper_parsing_exception: bad field" for i in items if "refuse" in i.title}
        written = super().upsert([i for i in items if i.id not in refused])
        if refused:
            raise BulkItemsError(f"refused {len(refused)}", refused, written)
        return written


def test_items_the_index_refuses_for_good_are_dead_lettered_and_the_rest_kept(tmp_path: Path) -> None:
    index = RefusingIndex(tmp_path / "index.sqlite3")
    handler = make_index_handler(index)
    outcomes = handler([record(0, scored(1).to_json()), record(1, scored(2, "refuse me").to_json()),
                        record(2, b"junk"), record(3, scored(2, "refuse me").to_json())])
    assert [o.error for o in outcomes][0] is None
    assert outcomes[1].error == outcomes[3].error == "index refused the item: mapper_parsing_exception: bad field"
    assert "not a valid ScoredItem" in (outcomes[2].error or "")
    assert index.count() == 1
    index.close()


def test_worker_indexes_from_the_bus_and_dead_letters_bad_records(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus.sqlite3")
    index = SqliteIndex(tmp_path / "index.sqlite3")
    for n in range(10):
        bus.publish("news.scored", scored(n).to_json())
    bus.publish("news.scored", b"garbage")
    bus.flush()
    worker = StageWorker(bus, "index", "indexer", ["news.scored"], make_index_handler(index), max_batch=4,
                         poll_timeout_s=0.05)
    stats = worker.run(threading.Event(), idle_exit_s=0.3)
    assert index.count() == 10
    assert stats.dead_lettered == 1
    assert bus.end_offsets([dlq_topic("news.scored")]) == {dlq_topic("news.scored"): 1}
    bus.close()
    index.close()


def test_run_detection_stores_the_alerts_of_detect_and_is_idempotent(tmp_path: Path) -> None:
    items = burst_scenario(1)
    index = SqliteIndex(tmp_path / "index.sqlite3")
    index.upsert(items)
    alerts = run_detection(index, SETTINGS)
    assert alerts == detect(items, SETTINGS)
    assert [(a.scope, a.entity) for a in alerts] == [("entity", "aurora-motors")]
    assert index.alerts(limit=None) == alerts
    assert run_detection(index, SETTINGS) == alerts
    assert len(index.alerts(limit=None)) == 1
    index.close()


def test_a_live_run_detection_judges_only_complete_arrivals(tmp_path: Path) -> None:
    items = burst_scenario(1)
    index = SqliteIndex(tmp_path / "index.sqlite3")
    now = BURST_START + 5.5 * HOUR  # the arrival that began within the last two hours is still open
    index.upsert([i for i in items if i.fetched_at <= now])
    live, judged = (detect_items(index.query(limit=None), SETTINGS, now=when) for when in (now, None))
    assert live.open_items > judged.open_items
    assert [a.observed for a in live.alerts] == [10] and [a.observed for a in judged.alerts] == [14]
    assert run_detection(index, SETTINGS, now=now) == live.alerts
    index.upsert(items)
    assert run_detection(index, SETTINGS) == detect(items, SETTINGS)
    index.close()


def test_run_detection_over_a_window_reads_history_first(tmp_path: Path) -> None:
    items = burst_scenario(1)
    index = SqliteIndex(tmp_path / "index.sqlite3")
    index.upsert(items)
    full = detect(items, SETTINGS)
    window = run_detection(index, SETTINGS, start=BURST_START - HOUR, end=BURST_START + 6 * HOUR)
    assert [a.id for a in window] == [a.id for a in full]
    assert run_detection(index, SETTINGS, start=BURST_START + 12 * HOUR) == []
    index.close()


def test_history_span_covers_warm_up_and_half_lives() -> None:
    span = history_span(SETTINGS)
    assert span >= timedelta(minutes=SETTINGS.bucket_minutes * SETTINGS.warmup_buckets)
    assert span >= timedelta(minutes=SETTINGS.bucket_minutes * 3 * SETTINGS.halflife_buckets)
    assert span >= timedelta(days=SETTINGS.weekly_after_days)  # the seasonal profiles' history
    flat = history_span(SETTINGS.model_copy(update={"seasonality": False}))
    assert flat == timedelta(minutes=60 * (3 * 24 + 3))


def test_a_timestamp_that_overflows_in_utc_is_dead_lettered_and_the_worker_goes_on(tmp_path: Path) -> None:
    # 0001-01-01T00:00+01:00 is a valid ISO 8601 time, but it lies before datetime.min in UTC
    raw = scored(1).to_json().decode()
    bad = raw.replace(scored(1).published_at.isoformat().replace("+00:00", "Z"), "0001-01-01T00:00:00+01:00")
    assert bad != raw
    bus = LocalBus(tmp_path / "bus.sqlite3")
    index = SqliteIndex(tmp_path / "index.sqlite3")
    bus.publish("news.scored", bad.encode())
    bus.publish("news.scored", scored(2).to_json())
    bus.flush()
    worker = StageWorker(bus, "index", "indexer", ["news.scored"], make_index_handler(index),
                         poll_timeout_s=0.05)
    stats = worker.run(threading.Event(), idle_exit_s=0.3)
    assert stats.dead_lettered == 1 and index.count() == 1
    (dead,) = bus.consumer("check", [dlq_topic("news.scored")]).poll(10, 0.5)
    assert dead.value == bad.encode() and b"published_at" in (dead.header("x-error-reason") or b"")
    bus.close()
    index.close()


def test_a_record_with_non_finite_scores_is_dead_lettered_not_stored(tmp_path: Path) -> None:
    # Python's json.dumps writes NaN/Infinity; stored as JSON they would become null and no longer parse,
    # so every later query (and every detection run) over the index would fail.
    import json

    index = SqliteIndex(tmp_path / "index.sqlite3")
    handler = make_index_handler(index)
    doc = json.loads(scored(1).to_json())
    doc["topic_scores"] = {doc["topic"]: float("nan")}
    nan = json.dumps(doc).encode()
    doc["topic_scores"] = {doc["topic"]: 1.0}
    doc["sentiment_scores"] = {"negative": float("inf")}
    inf = json.dumps(doc).encode()
    outcomes = handler([record(0, nan), record(1, inf), record(2, scored(2).to_json())])
    assert [o.error is None for o in outcomes] == [False, False, True]
    assert "topic_scores" in (outcomes[0].error or "") and "sentiment_scores" in (outcomes[1].error or "")
    assert index.count() == 1
    assert len(index.query(limit=None)) == 1  # the index still reads back
    index.close()


def test_the_live_detector_waits_longer_after_a_slow_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow run (the first reads the whole index) is followed by a wait four times as long,
    busy or idle, so that detection takes at most a fifth of the alert worker's time."""
    import types

    import alerting.stage
    from finsentinel import runtime
    from finsentinel.settings import Settings

    clock = [0.0]
    runs: list[float] = []

    def slow_detection(*args: object, **kwargs: object) -> list[object]:
        runs.append(clock[0])
        clock[0] += 10.0  # a run over a large index
        return []

    monkeypatch.setattr(runtime, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(alerting.stage.LiveDetection, "run", slow_detection)
    index = SqliteIndex(tmp_path / "index.sqlite3")
    index.ensure()
    bus = LocalBus(tmp_path / "bus.sqlite3")
    settings = Settings.model_validate({"alerting": {"notify": {"log": False, "topic": False}}})
    detector = runtime._Detector(settings, bus, index, every_s=30.0)
    for at, consumed in ((5.0, 3), (31.0, 2), (50.0, 0), (80.0, 4), (81.0, 0), (120.0, 0)):
        clock[0] = max(clock[0], at)
        detector(consumed)
    # busy at 31 s (30 s since start); then 4 x 10 s after that run ended at 41 s: not at 50 s
    # idle, not at 80 s busy, but at 81 s; nothing new after that, so no run at 120 s
    assert runs == [31.0, 81.0] and detector.took_s == 10.0
    detector.notifier.close()
    index.close()
    bus.close()


def test_the_live_detector_runs_again_while_idle_until_a_waiting_arrival_is_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A quiet feed: the last arrival waits (pending) after the idle run; the worker must run again
    when idle, or LiveDetection's quiet-feed rule (judged an hour on) never gets the chance."""
    import types

    from finsentinel import runtime
    from finsentinel.settings import Settings

    clock = [0.0]
    runs: list[float] = []

    def run(self: LiveDetection, now: object) -> list[Alert]:
        runs.append(clock[0])
        self.detector.pending = 3 if len(runs) < 3 else 0  # judged on the third run
        return []

    monkeypatch.setattr(runtime, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(LiveDetection, "run", run)
    index = SqliteIndex(tmp_path / "index.sqlite3")
    index.ensure()
    bus = LocalBus(tmp_path / "bus.sqlite3")
    settings = Settings.model_validate({"alerting": {"notify": {"log": False, "topic": False}}})
    detector = runtime._Detector(settings, bus, index, every_s=30.0)
    for at, consumed in ((1.0, 5), (2.0, 0), (10.0, 0), (32.0, 0), (50.0, 0), (63.0, 0), (100.0, 0), (200.0, 0)):
        clock[0] = at
        detector(consumed)
    # idle at 2 s: run, an arrival still waits; then every 30 s while idle until it is judged (62 s)
    assert runs == [2.0, 32.0, 63.0]
    detector.notifier.close()
    index.close()
    bus.close()


def test_live_detection_reads_only_what_is_new_and_stores_what_a_backfill_finds(tmp_path: Path) -> None:
    rng = random.Random(4)
    items = [i.model_copy(update={"fetched_at": i.published_at + timedelta(minutes=rng.choice((1, 5, 40)))})
             for i in burst_scenario(2)]
    index = ReadCountingIndex(tmp_path / "index.sqlite3")
    live = LiveDetection(index, SETTINGS, page=25)
    sent: dict[str, Alert] = {}
    poll = min(i.fetched_at for i in items)
    while poll <= max(i.fetched_at for i in items) + 3 * HOUR:
        index.upsert([i for i in items if poll - timedelta(minutes=20) < i.fetched_at <= poll])
        for alert in live.run(now=poll):
            sent[alert.id] = alert
        poll += timedelta(minutes=20)
    backfill = detect(items, SETTINGS)
    assert sent == {a.id: a for a in backfill} == {a.id: a for a in index.alerts(limit=None)}
    assert max(len(k.steps) for k in live.detector.engine.keys.values()) <= 2 * SETTINGS.window_buckets
    # each run read the last few hours (lateness, the open arrival, the lag margin), not the history
    assert len(index.reads) > 100 and max(index.reads) < len(items) / 8
    # a restarted worker finds the stored alerts again: nothing new to send
    assert LiveDetection(index, SETTINGS).run(now=poll) == []
    assert LiveDetection(index, SETTINGS, stored=index.alerts(limit=None)).run(now=poll) == []  # as the worker
    index.close()


def test_live_detection_counts_an_item_indexed_after_its_arrival_was_judged_as_late(tmp_path: Path) -> None:
    items = burst_scenario(1)
    index = SqliteIndex(tmp_path / "index.sqlite3")
    cut = BURST_START + 2 * HOUR
    straggler = next(i for i in items if cut - 30 * timedelta(minutes=1) < i.fetched_at <= cut)
    index.upsert([i for i in items if i.fetched_at <= cut + HOUR and i.id != straggler.id])
    live = LiveDetection(index, SETTINGS)
    live.run(now=cut + HOUR)
    assert live.detector.late == 0
    index.upsert([straggler])  # the index lagged: its arrival was judged without it
    late_before = REGISTRY.get_sample_value("finsentinel_detect_late_items_total") or 0.0
    live.run(now=cut + HOUR)
    assert live.detector.late == 1
    # what an operator watches: items counted late, items waiting, how far detection has judged
    assert REGISTRY.get_sample_value("finsentinel_detect_late_items_total") == late_before + 1
    assert REGISTRY.get_sample_value("finsentinel_detect_waiting_items") == live.detector.open_items > 0
    watermark = live.detector.watermark.watermark
    assert watermark is not None
    assert REGISTRY.get_sample_value("finsentinel_detect_watermark_timestamp") == watermark.timestamp()
    index.close()


def test_live_detection_judges_the_last_arrival_once_the_feed_is_quiet(tmp_path: Path) -> None:
    items = burst_scenario(1)
    index = SqliteIndex(tmp_path / "index.sqlite3")
    index.upsert(items)
    newest = max(i.fetched_at for i in items)
    live = LiveDetection(index, SETTINGS)
    lateness = timedelta(minutes=SETTINGS.bucket_minutes * SETTINGS.lateness_buckets)
    live.run(now=newest + timedelta(minutes=30))  # a backlog or a quiet feed? wait
    assert live.detector.pending > 0
    live.run(now=newest + lateness + timedelta(minutes=SETTINGS.settle_minutes + 1))  # an hour on: quiet
    assert live.detector.pending == 0
    index.close()


def test_live_detection_pages_through_a_long_history_and_a_replay_in_one_arrival(tmp_path: Path) -> None:
    items = burst_scenario(3)
    index = ReadCountingIndex(tmp_path / "index.sqlite3")
    index.upsert(items)
    live = LiveDetection(index, SETTINGS, page=40)  # a restart over history, 40 items at a time
    assert live.run(now=max(i.fetched_at for i in items) + 4 * HOUR) == detect(items, SETTINGS)
    assert max(index.reads) == 40 and len(index.reads) > len(items) / 40
    index.close()
    replayed = tmp_path / "replay.sqlite3"  # a backfill replayed in seconds: one arrival of every item
    index = ReadCountingIndex(replayed)
    index.upsert([i.model_copy(update={"fetched_at": T0_FETCH}) for i in items])
    live = LiveDetection(index, SETTINGS, page=40)
    assert live.run(now=T0_FETCH + 4 * HOUR) == detect(
        [i.model_copy(update={"fetched_at": T0_FETCH}) for i in items], SETTINGS)
    assert live.page >= len(items)  # doubled until the arrival fitted
    index.close()
