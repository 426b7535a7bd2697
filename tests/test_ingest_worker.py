"""The ingest worker over the local bus: publish, dedup, restart safety, bad files, scheduling."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest

from finsentinel.bus.base import Record
from finsentinel.bus.local import LocalBus
from finsentinel.errors import BusError, ConfigError
from finsentinel.schema import RawItem
from finsentinel.settings import FileSourceSettings, IngestSettings, load_settings
from ingest.worker import TRUNCATED_HEADER, IngestCrashError, IngestWorker

TOPIC = "news.raw"


def rss_file(path: Path, *items: tuple[str, str, str]) -> Path:
    body = "".join(
        f"<item><title>{t}</title><link>{u}</link><description>{t} in detail.</description><pubDate>{d}</pubDate></item>"
        for t, u, d in items
    )
    path.write_text(f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{body}</channel></rss>',
                    encoding="utf-8")
    return path


def api_file(path: Path, *articles: dict[str, object]) -> Path:
    path.write_text(json.dumps({"status": "ok", "articles": list(articles)}), encoding="utf-8")
    return path


def src(name: str, path: Path, fmt: str = "rss", **kw: object) -> FileSourceSettings:
    return FileSourceSettings.model_validate({"name": name, "path": path, "format": fmt, **kw})


def records(bus: LocalBus, group: str = "reader") -> list[Record]:
    consumer = bus.consumer(group, [TOPIC])
    out: list[Record] = []
    while batch := consumer.poll(1000, 0.05):
        out += batch
    consumer.close()
    return out


@pytest.fixture
def feeds(tmp_path: Path) -> list[FileSourceSettings]:
    en = rss_file(tmp_path / "en.xml",
                  ("Kestrel Cloud signs deal", "https://w.example/k1", "Mon, 02 Mar 2026 14:05:00 GMT"),
                  ("Northwind Bank passes stress test", "https://w.example/n1", "Mon, 02 Mar 2026 15:00:00 GMT"))
    api_dir = tmp_path / "api"
    api_dir.mkdir()
    api_file(api_dir / "page-1.json",
             {"title": "Kestrel Cloud signs deal", "description": "Kestrel Cloud signs deal in detail.",
              "url": "https://w.example/k1?utm_source=api", "publishedAt": "2026-03-02T14:10:00Z"},
             {"title": None, "description": "no title", "url": "https://w.example/x",
              "publishedAt": "2026-03-02T14:10:00Z"})
    api_file(api_dir / "page-2.json",
             {"title": "极光汽车2月交付量同比大增", "description": "当月交付创新高。", "url": "https://z.example/1",
              "publishedAt": "2026-03-02T22:00:00+08:00"})
    (api_dir / "notes.txt").write_text("not a feed", encoding="utf-8")
    return [src("wire", en, lang="en"), src("api", api_dir, "json", timezone="+08:00")]


def worker(tmp_path: Path, sources: list[FileSourceSettings], bus: object, **kw: object) -> IngestWorker:
    settings = IngestSettings.model_validate({"sources": sources, "state_path": tmp_path / "state.db", **kw})
    return IngestWorker(settings, bus, TOPIC)  # type: ignore[arg-type]


def test_run_once_publishes_dedups_and_counts(tmp_path: Path, feeds: list[FileSourceSettings]) -> None:
    bus = LocalBus(tmp_path / "bus.db")
    stats = worker(tmp_path, feeds, bus).run_once()
    assert (stats.fetched, stats.published, stats.duplicates, stats.skipped) == (5, 3, 1, 1)
    assert stats.per_source["wire"].published == 2 and stats.per_source["api"].duplicates == 1
    assert stats.per_source["api"].skip_reasons == {"missing_title": 1} and stats.per_source["api"].files_read == 2
    assert stats.by_lang == {"en": 2, "zh": 1} and stats.skip_reasons == {"missing_title": 1}
    json.dumps(asdict(stats))  # the CLI prints it
    recs = records(bus)
    items = [RawItem.from_json(r.value) for r in recs]
    assert [r.key for r in recs] == [i.id.encode() for i in items]
    kestrel = next(i for i in items if i.title == "Kestrel Cloud signs deal")
    assert kestrel.copies == 2 and kestrel.source == "wire"
    assert {i.title for i in items} == {"Kestrel Cloud signs deal", "Northwind Bank passes stress test",
                                        "极光汽车2月交付量同比大增"}


def test_restart_neither_republishes_nor_skips(tmp_path: Path, feeds: list[FileSourceSettings]) -> None:
    bus = LocalBus(tmp_path / "bus.db")
    assert worker(tmp_path, feeds, bus).run_once().published == 3
    again = worker(tmp_path, feeds, bus).run_once()  # a fresh worker on the same state
    assert (again.published, again.fetched) == (0, 0)
    assert again.per_source["wire"].files_unchanged == 1
    # A touched file is read again; its items are remembered, so nothing is re-published.
    os.utime(feeds[0].path, ns=(time.time_ns(), time.time_ns() + 10**9))
    touched = worker(tmp_path, feeds, bus).run_once()
    assert (touched.fetched, touched.published, touched.duplicates) == (2, 0, 2)
    # New items appended to a file are published.
    rss_file(feeds[0].path, ("Kestrel Cloud signs deal", "https://w.example/k1", "Mon, 02 Mar 2026 14:05:00 GMT"),
             ("Meridian Foods lifts target", "https://w.example/m1", "Mon, 02 Mar 2026 16:00:00 GMT"))
    grown = worker(tmp_path, feeds, bus).run_once()
    assert (grown.published, grown.duplicates) == (1, 1)
    assert len(records(bus)) == 4


class FlakyBus(LocalBus):
    """A local bus whose first flush fails, like a broker that went away mid-pass."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fail = True

    def flush(self, timeout_s: float = 30.0) -> None:
        if self.fail:
            self.fail = False
            with self._lock:
                self._pending.clear()
            raise BusError("broker unavailable")
        super().flush(timeout_s)


def test_nothing_is_marked_seen_when_publishing_fails(tmp_path: Path, feeds: list[FileSourceSettings]) -> None:
    bus = FlakyBus(tmp_path / "bus.db")
    with pytest.raises(BusError):
        worker(tmp_path, feeds, bus).run_once()
    retry = worker(tmp_path, feeds, bus).run_once()
    assert retry.published == 3 and len(records(bus)) == 3


def test_bad_file_and_missing_path_do_not_stop_other_sources(tmp_path: Path, feeds: list[FileSourceSettings]) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<<< not a feed at all {")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{truncated", encoding="utf-8")
    sources = [src("broken", broken), src("gone", tmp_path / "nope"), src("badjson", bad_json, "json"), *feeds]
    bus = LocalBus(tmp_path / "bus.db")
    stats = worker(tmp_path, sources, bus).run_once()
    assert stats.published == 3
    assert stats.per_source["broken"].skip_reasons == {"bad_xml": 1}
    gone = stats.per_source["gone"]
    assert (gone.errors, gone.fetched) == (1, 0) and "does not exist" in str(gone.error) and stats.errors == 1
    assert stats.per_source["badjson"].skip_reasons == {"bad_json": 1}


def test_parser_crash_on_one_file_is_contained(tmp_path: Path, feeds: list[FileSourceSettings],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.sources.files as module

    real = module.parse_rss

    def explode(data: bytes, source: str, *args: object, **kw: object) -> object:
        if source == "wire":
            raise RuntimeError("parser bug")
        return real(data, source, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "parse_rss", explode)
    stats = worker(tmp_path, feeds, LocalBus(tmp_path / "bus.db")).run_once()
    assert stats.per_source["wire"].skip_reasons == {"parse_error": 1}
    assert stats.per_source["api"].published == 2


def test_unreadable_file_is_skipped(tmp_path: Path, feeds: list[FileSourceSettings],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.read_bytes

    def deny(self: Path) -> bytes:
        if self.name == "en.xml":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    stats = worker(tmp_path, feeds, LocalBus(tmp_path / "bus.db")).run_once()
    assert stats.per_source["wire"].skip_reasons == {"unreadable": 1} and stats.published == 2


def test_long_bodies_are_capped_and_flagged(tmp_path: Path) -> None:
    path = api_file(tmp_path / "long.json", {"title": "Long", "description": "word " * 100, "url": "https://l.example",
                                             "publishedAt": "2026-03-02T10:00:00Z"})
    bus = LocalBus(tmp_path / "bus.db")
    worker(tmp_path, [src("long", path, "json")], bus, max_body_chars=120).run_once()
    [rec] = records(bus)
    assert len(RawItem.from_json(rec.value).body) == 120 and rec.header(TRUNCATED_HEADER) == b"1"


def test_bad_source_settings_fail_at_start(tmp_path: Path) -> None:
    bus = LocalBus(tmp_path / "bus.db")
    with pytest.raises(ConfigError, match="repeated"):
        worker(tmp_path, [src("a", tmp_path), src("a", tmp_path)], bus)
    with pytest.raises(ConfigError, match="'a'.*Mars/Olympus"):
        worker(tmp_path, [src("a", tmp_path, timezone="Mars/Olympus")], bus)
    with pytest.raises(ConfigError, match="missing keys"):
        worker(tmp_path, [src("a", tmp_path, "json", mapping={"items": "data"})], bus)


def run_until(w: IngestWorker, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=w.run_forever, args=(stop,))
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


def test_run_forever_runs_each_source_on_its_schedule(tmp_path: Path, feeds: list[FileSourceSettings]) -> None:
    bus = LocalBus(tmp_path / "bus.db")
    w = worker(tmp_path, feeds, bus, interval_s=0.05)
    run_until(w, lambda: w.runs >= 6 and len(w.store.source_states()) == 2)
    assert w.runs >= 6 and set(w.store.source_states()) == {"wire", "api"}
    assert len(records(bus)) == 3  # later runs found nothing new


def test_run_forever_survives_a_failing_run(tmp_path: Path, feeds: list[FileSourceSettings]) -> None:
    bus = FlakyBus(tmp_path / "bus.db")
    w = worker(tmp_path, feeds, bus, interval_s=0.05)
    run_until(w, lambda: len(records(bus, "probe")) >= 3)
    assert len(records(bus)) == 3


@pytest.fixture
def buggy_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processing a batch raises what no code translates: a bug."""
    from ingest.pipeline import Pipeline

    def process(self: Pipeline, *args: object, **kw: object) -> object:
        raise RuntimeError("pipeline bug")

    monkeypatch.setattr(Pipeline, "process", process)


@pytest.mark.usefixtures("buggy_pipeline")
def test_an_unexpected_crash_fails_the_pass_logged_and_counted(tmp_path: Path, feeds: list[FileSourceSettings],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    w = worker(tmp_path, feeds, LocalBus(tmp_path / "bus.db"))
    with caplog.at_level("ERROR", logger="ingest.worker"), \
            pytest.raises(IngestCrashError, match="processing what wire, api returned crashed: RuntimeError: "
                                                  "pipeline bug .*this is a bug"):
        w.run_once()
    [crash] = [r for r in caplog.records if r.exc_info]
    assert crash.name == "ingest.worker" and "pipeline bug" in str(crash.exc_info[1])  # type: ignore[index]
    healths = {name: health for name, (_, health) in w.store.source_states().items()}
    assert {n: (h.failures, h.errors) for n, h in healths.items()} == {"wire": (1, 1), "api": (1, 1)}
    assert "RuntimeError: pipeline bug" in str(healths["wire"].last_error)


@pytest.mark.usefixtures("buggy_pipeline")
def test_run_forever_logs_and_counts_a_crashing_run_and_goes_on(tmp_path: Path, feeds: list[FileSourceSettings],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    w = worker(tmp_path, feeds, LocalBus(tmp_path / "bus.db"), interval_s=0.05)

    def failures() -> int:
        return min((h.failures for _, h in w.store.source_states().values()), default=0)

    with caplog.at_level("ERROR"):
        run_until(w, lambda: failures() >= 2 and len(w.store.source_states()) == 2)
    assert failures() >= 2  # every run crashed; the scheduler kept running them
    assert not [r for r in caplog.records if r.name.startswith("apscheduler")]
    assert any(r.name == "ingest.worker" and r.exc_info for r in caplog.records)


@pytest.mark.usefixtures("buggy_pipeline")
def test_ingest_once_ends_with_one_error_line_after_the_logged_traceback(
        tmp_path: Path, feeds: list[FileSourceSettings], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from finsentinel.cli import main

    cfg = tmp_path / "f.yaml"
    sources = "".join(f"    - {{name: {f.name}, path: '{f.path}', format: {f.format}}}\n" for f in feeds)
    cfg.write_text(f"bus:\n  local:\n    path: {tmp_path / 'bus.db'}\ningest:\n  state_path: {tmp_path / 's.db'}\n"
                   f"  sources:\n{sources}", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert main(["-c", str(cfg), "ingest", "--once"]) == 2
    finally:  # main configures logging to this test's captured stderr: put the root logger back
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("finsentinel: error: ingest: processing what wire, api returned crashed: RuntimeError")
    assert "Traceback" in err and "RuntimeError: pipeline bug" in err


def test_sources_from_a_settings_file_with_an_inline_mapping(tmp_path: Path) -> None:
    posts = tmp_path / "posts.json"
    posts.write_text(json.dumps({"payload": {"posts": [
        {"body": "Meridian Foods volumes rebound", "ts": "2026-03-02 09:30", "link": "https://p.example/1"}]}}),
        encoding="utf-8")
    cfg = tmp_path / "finsentinel.yaml"
    cfg.write_text(
        f"ingest:\n  state_path: {tmp_path / 'state.db'}\n  sources:\n"
        f"    - {{name: posts, path: {posts}, format: json, timezone: '+08:00',\n"
        "       mapping: {items: payload.posts, title: body, time: ts, url: link}}\n", encoding="utf-8")
    settings = load_settings(cfg)
    bus = LocalBus(tmp_path / "bus.db")
    assert IngestWorker(settings.ingest, bus, TOPIC).run_once().published == 1
    [item] = [RawItem.from_json(r.value) for r in records(bus)]
    assert item.title == "Meridian Foods volumes rebound" and item.published_at.hour == 1

    cfg.write_text(f"ingest:\n  sources:\n    - {{name: p, path: {posts}, format: json, "
                   "mapping: {items: a, headline: b, time: c}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ingest\.sources\.0\..*mapping.*headline"):
        load_settings(cfg)
