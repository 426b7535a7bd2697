"""The worker over HTTP sources: restart safety, circuit breaker, suspicious sources, copies, schedule, metrics, CLI."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from finsentinel.bus.local import LocalBus
from finsentinel.cli import main
from finsentinel.errors import BusError
from finsentinel.schema import RawItem
from finsentinel.settings import IngestSettings, load_settings
from ingest.worker import IngestWorker
from tests.test_ingest_http import Script, fast, payload
from tests.test_ingest_worker import FlakyBus, records, run_until

TOPIC = "news.raw"
FEED_URL = "https://feeds.example/markets.rss"


def rss(*entries: tuple[str, str, str, str]) -> bytes:
    items = "".join(f"<item><title>{t}</title><link>{u}</link><pubDate>{d}</pubDate><description>{b}</description>"
                    "</item>" for t, u, d, b in entries)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>m</title>{items}</channel></rss>'.encode()


A = ("Kestrel Cloud signs deal", "https://w.example/a", "Tue, 03 Mar 2026 08:00:00 GMT", "Five-year contract.")
B = ("Northwind Bank passes test", "https://w.example/b", "Tue, 03 Mar 2026 08:30:00 GMT", "Capital above minimum.")
C = ("Meridian Foods lifts target", "https://w.example/c", "Tue, 03 Mar 2026 09:00:00 GMT", "Margin goal raised.")


class Feed:
    """A feed server with ETags: 304 when the client already has the current version."""

    def __init__(self, *entries: tuple[str, str, str, str]) -> None:
        self.version = 0
        self.body = b""
        self.requests: list[httpx.Request] = []
        self.set(*entries)

    def set(self, *entries: tuple[str, str, str, str]) -> None:
        self.version += 1
        self.body = rss(*entries)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        etag = f'"v{self.version}"'
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"ETag": etag})
        return httpx.Response(200, content=self.body, headers={"ETag": etag, "Content-Type": "application/rss+xml"})


def settings(tmp_path: Path, *sources: dict[str, object], **kw: object) -> IngestSettings:
    http = fast(max_retries=0, breaker_failures=2, breaker_pause_s=3600, suspicious_after=2)
    return IngestSettings.model_validate({"sources": list(sources), "state_path": tmp_path / "state.db",
                                          "http": http, **kw})


def feed_source(name: str = "wire", url: str = FEED_URL, **kw: object) -> dict[str, object]:
    return {"type": "rss", "name": name, "url": url, "lang": "en", **kw}


def titles(bus: LocalBus, group: str = "reader") -> list[str]:
    return [RawItem.from_json(r.value).title for r in records(bus, group)]


def test_restart_neither_republishes_nor_skips(tmp_path: Path) -> None:
    feed = Feed(A, B)
    cfg = settings(tmp_path, feed_source())
    bus = FlakyBus(tmp_path / "bus.db")
    bus.fail = False
    assert IngestWorker(cfg, bus, TOPIC, transport=httpx.MockTransport(feed)).run_once().published == 2
    # A new process on the same state: unchanged feed answers 304, nothing is published again.
    again = IngestWorker(cfg, bus, TOPIC, transport=httpx.MockTransport(feed)).run_once()
    assert again.published == 0 and again.per_source["wire"].not_modified
    assert feed.requests[-1].headers["if-none-match"] == '"v1"'
    # The feed gains an item, and the bus fails while publishing it: the worker dies mid-pass.
    feed.set(A, B, C)
    bus.fail = True
    with pytest.raises(BusError):
        IngestWorker(cfg, bus, TOPIC, transport=httpx.MockTransport(feed)).run_once()
    # The restarted worker must not send the new ETag (it never published that version) and must publish C once.
    restarted = IngestWorker(cfg, bus, TOPIC, transport=httpx.MockTransport(feed)).run_once()
    assert feed.requests[-1].headers["if-none-match"] == '"v1"'
    assert (restarted.published, restarted.duplicates) == (1, 2)
    assert sorted(titles(bus)) == sorted(t for t, *_ in (A, B, C))


def test_failing_source_is_paused_and_does_not_stop_others(tmp_path: Path) -> None:
    broken = Script(httpx.Response(503, content=b"maintenance"))
    feed = Feed(A, B)

    def route(request: httpx.Request) -> httpx.Response:
        return broken(request) if request.url.host == "down.example" else feed(request)

    cfg = settings(tmp_path, feed_source(), feed_source("down", "https://down.example/rss"))
    bus = LocalBus(tmp_path / "bus.db")
    worker = IngestWorker(cfg, bus, TOPIC, transport=httpx.MockTransport(route))
    first = worker.run_once()
    assert first.published == 2 and first.per_source["down"].errors == 1 and "503" in str(first.per_source["down"].error)
    worker.run_once()
    third = worker.run_once()
    assert third.per_source["down"].paused and len(broken.requests) == 2  # paused after 2 failures: not asked again
    assert REGISTRY.get_sample_value("finsentinel_ingest_source_paused", {"source": "down"}) == 1
    assert (REGISTRY.get_sample_value("finsentinel_ingest_fetch_errors_total", {"source": "down"}) or 0) >= 2
    out = status(tmp_path, cfg)
    assert "down" in out and "paused" in out and "HTTP 503" in out


def test_source_that_goes_silent_is_flagged(tmp_path: Path) -> None:
    script = Script(httpx.Response(200, content=rss(A)), httpx.Response(200, content=rss()),
                    httpx.Response(200, content=rss()))
    cfg = settings(tmp_path, feed_source())
    worker = IngestWorker(cfg, LocalBus(tmp_path / "bus.db"), TOPIC, transport=script.transport)
    for _ in range(3):
        worker.run_once()
    assert REGISTRY.get_sample_value("finsentinel_ingest_source_suspicious", {"source": "wire"}) == 1
    assert "suspicious" in status(tmp_path, cfg) and "no items in the last 2 fetches" in status(tmp_path, cfg)


def test_syndicated_copies_across_sources_are_counted(tmp_path: Path) -> None:
    body = ("Aurora Motors said on Tuesday it would recall 48,000 Lumina SUVs because a battery module may overheat "
            "while charging, after regulators opened a review. Shares fell 6% in premarket trading.")
    wire = rss(("Aurora Motors recalls 48,000 SUVs", "https://w.example/recall", "Tue, 03 Mar 2026 09:15:00 GMT", body))
    copy = rss(("UPDATE 1-Aurora Motors recalls 48,000 SUVs", "https://m.example/aurora",
                "Tue, 03 Mar 2026 10:05:00 GMT", "By Tom Reilly\n" + body))
    late = rss(("Aurora Motors recalls 48,000 SUVs - Tickerline", "https://t.example/x",
                "Tue, 03 Mar 2026 11:00:00 GMT", body + " Reporting by Chen Wei"))
    pages = {"w.example": wire, "m.example": copy, "t.example": b"<rss version='2.0'><channel></channel></rss>"}

    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=pages[request.url.host])

    cfg = settings(tmp_path, feed_source("wire", "https://w.example/rss"), feed_source("pulse", "https://m.example/rss"),
                   feed_source("ticker", "https://t.example/rss"))
    bus = LocalBus(tmp_path / "bus.db")
    worker = IngestWorker(cfg, bus, TOPIC, transport=httpx.MockTransport(route))
    stats = worker.run_once()
    [item] = [RawItem.from_json(r.value) for r in records(bus)]
    assert stats.near_duplicates == 1 and item.copies == 2 and item.url == "https://w.example/recall"
    pages["t.example"] = late
    assert worker.run_once().per_source["ticker"].near_duplicates == 1
    assert worker.store.copies(item.id) == 3 and len(records(bus, "again")) == 1


def test_each_source_runs_on_its_own_interval_never_overlapping(tmp_path: Path) -> None:
    active, most = [0], [0]
    lock = threading.Lock()
    seen: dict[str, int] = {}

    def route(request: httpx.Request) -> httpx.Response:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            seen[request.url.host] = seen.get(request.url.host, 0) + 1
        time.sleep(0.1)  # slower than the fast source's interval
        with lock:
            active[0] -= 1
        return httpx.Response(200, content=rss(A))

    cfg = settings(tmp_path, feed_source("fast", "https://fast.example/rss", interval_s=0.02),
                   feed_source("slow", "https://slow.example/rss", interval_s=3600), jitter_s=0)
    worker = IngestWorker(cfg, LocalBus(tmp_path / "bus.db"), TOPIC, transport=httpx.MockTransport(route))
    run_until(worker, lambda: seen.get("fast.example", 0) >= 5)
    assert seen["fast.example"] >= 5 and seen["slow.example"] == 1
    assert most[0] <= 2  # the two sources may overlap; one source never overlaps itself


def status(tmp_path: Path, cfg: IngestSettings, *extra: str) -> str:
    import contextlib
    import io

    config = tmp_path / "status.yaml"
    config.write_text(json.dumps({"ingest": json.loads(cfg.model_dump_json())}), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["-c", str(config), "ingest", "status", *extra])
    return f"{out.getvalue()}exit={code}"


def test_status_cli_json_and_health_check_exit_code(tmp_path: Path) -> None:
    cfg = settings(tmp_path, feed_source(), feed_source("idle", "https://idle.example/rss"))
    assert "never run" in status(tmp_path, cfg) and not cfg.state_path.exists()  # status creates nothing
    script = Script(httpx.Response(200, content=rss(A, B)))
    IngestWorker(cfg.model_copy(update={"sources": cfg.sources[:1]}), LocalBus(tmp_path / "bus.db"), TOPIC,
                 transport=script.transport).run_once()
    text, code = status(tmp_path, cfg, "--json").rsplit("exit=", 1)
    rows = {r["source"]: r for r in json.loads(text)["sources"]}
    assert rows["wire"]["state"] == "ok" and rows["wire"]["new"] == 2 and rows["idle"]["state"] == "never run"
    assert code == "0" and status(tmp_path, cfg, "--fail-on-problems").endswith("exit=0")


def test_bench_cli_prints_one_json_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "ingest", "--json", "--items", "400", "--workdir", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["items"] == 400 and result["items_per_s"] > 0 and result["on_bus"] == result["published"]
    assert result["near_dup_recall"] >= 0.9 and result["near_dup_precision"] >= 0.95
    assert list(tmp_path.iterdir()) == []  # the scratch directory is removed


def test_feed_and_api_sources_from_a_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's YAML: an RSS feed and an API added in settings alone, one pass against recorded answers."""
    config = tmp_path / "finsentinel.yaml"
    config.write_text(f"""
ingest:
  state_path: {tmp_path / 'state.db'}
  interval_s: 300
  sources:
    - type: rss
      name: jingwen-flash
      url: https://flash.jingwen.example/rss.xml
      lang: zh
      timezone: Asia/Shanghai
      encoding: gb18030
    - type: api
      name: newsapi-watchlist
      preset: newsapi
      params: {{q: "Jinhai OR Zhongtian", language: en}}
      api_key_env: NEWSAPI_KEY
      interval_s: 900
    - type: api
      name: my-news-api
      url: https://api.news.example/v2/headlines
      params: {{category: business, since: "{{since:%Y-%m-%dT%H:%M:%SZ}}"}}
      headers: {{Authorization: "Bearer demo"}}
      mapping: {{items: data.posts, title: headline, body: summary, url: link, time: published, id: uid}}
""", encoding="utf-8")
    monkeypatch.setenv("NEWSAPI_KEY", "test-key")
    cfg = load_settings(config)
    own = json.dumps({"data": {"posts": [{"uid": "n1", "headline": "Pacific Grid wins permit", "summary": "Approved.",
                                          "link": "https://api.news.example/a/n1", "published": "2026-03-03T08:10:00Z"}]}})
    answers = {"flash.jingwen.example": payload("gbk_rss.xml"), "newsapi.org": payload("newsapi_everything.json"),
               "api.news.example": own.encode()}
    script = Script(lambda request: httpx.Response(200, content=answers[request.url.host]))
    ingest = cfg.ingest.model_copy(update={"http": fast()})
    bus = LocalBus(tmp_path / "bus.db")
    stats = IngestWorker(ingest, bus, TOPIC, transport=script.transport).run_once()
    assert {name: s.published for name, s in stats.per_source.items()} == {
        "jingwen-flash": 2, "newsapi-watchlist": 2, "my-news-api": 1}
    assert "快讯:北风银行(NWBK.US)获准在沪设立理财子公司" in titles(bus)
    sent = {r.url.host: r for r in script.requests}
    assert sent["newsapi.org"].headers["x-api-key"] == "test-key"
    assert sent["api.news.example"].headers["authorization"] == "Bearer demo"
