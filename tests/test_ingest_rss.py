"""RSS/Atom over HTTP: recorded English, Chinese, Atom and GBK feeds, conditional GET, format changes, articles."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from finsentinel.errors import ConfigError, SourceError
from finsentinel.schema import RawItem
from finsentinel.settings import ArticleSettings, IngestSettings, RssSourceSettings
from ingest.parse import Skipped
from ingest.sources.articles import ArticleFetcher
from ingest.sources.base import Checkpoint
from ingest.sources.http import HttpClient
from ingest.sources.rss import RssSource, to_utf8
from tests.parser_faults import poison_language_detection
from tests.test_ingest_http import Script, fast, payload

NOW = datetime(2026, 3, 3, 10, 30, tzinfo=UTC)
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}


def rss_source(script: Script, **kw: object) -> RssSource:
    cfg = RssSourceSettings.model_validate({"type": "rss", "name": "feed", "url": "https://feeds.example/f.xml", **kw})
    ingest = IngestSettings(http=fast())
    return RssSource(cfg, ingest, HttpClient(ingest.http, script.transport))


def items(results: object) -> list[RawItem]:
    assert isinstance(results, list | tuple)
    return [r for r in results if isinstance(r, RawItem)]


def test_english_feed_with_validators_saved() -> None:
    script = Script(httpx.Response(200, content=payload("en_rss.xml"),
                                   headers={**RSS_TYPE, "ETag": '"v1"', "Last-Modified": "Tue, 03 Mar 2026 10:15:00 GMT"}))
    fetch = rss_source(script, lang="en").fetch(Checkpoint(), NOW)
    recall, kestrel, northwind = items(fetch.results)
    assert recall.title == "Aurora Motors recalls 48,000 Lumina SUVs over battery fire risk"
    assert recall.body.startswith("Aurora Motors (Nasdaq: AURM) said on Tuesday") and "\n" in recall.body
    assert recall.entity_hints == ("AURM", "$AURM") and recall.published_at == datetime(2026, 3, 3, 9, 15, tzinfo=UTC)
    assert "Velora Retail’s" in kestrel.body and northwind.lang == "en"
    assert fetch.checkpoint.etag == '"v1"' and fetch.checkpoint.last_modified == "Tue, 03 Mar 2026 10:15:00 GMT"
    assert fetch.checkpoint.since == NOW.timestamp() and not fetch.not_modified


def test_an_entry_the_parser_fails_on_is_skipped_not_a_failed_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    poison_language_detection(monkeypatch, "five-year deal")
    script = Script(httpx.Response(200, content=payload("en_rss.xml"), headers=RSS_TYPE))
    fetch = rss_source(script).fetch(Checkpoint(), NOW)
    assert [r.title for r in items(fetch.results)] == [
        "Aurora Motors recalls 48,000 Lumina SUVs over battery fire risk", "Northwind Bank passes regional stress test"]
    [skipped] = [r for r in fetch.results if isinstance(r, Skipped)]
    assert skipped.reason == "bad_entry" and "RuntimeError: detector bug" in skipped.excerpt


def test_conditional_get_and_not_modified() -> None:
    script = Script(httpx.Response(304))
    source = rss_source(script)
    fetch = source.fetch(Checkpoint(etag='"v1"', last_modified="Tue, 03 Mar 2026 10:15:00 GMT"), NOW)
    sent = script.requests[0].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == "Tue, 03 Mar 2026 10:15:00 GMT"
    assert fetch.not_modified and list(fetch.results) == [] and fetch.checkpoint.etag == '"v1"'
    source.fetch(Checkpoint(), NOW)
    assert "if-none-match" not in script.requests[1].headers


def test_chinese_feed_with_local_times_and_full_width_digits() -> None:
    script = Script(httpx.Response(200, content=payload("zh_rss.xml"), headers=RSS_TYPE))
    recall, profit = items(rss_source(script, timezone="Asia/Shanghai").fetch(Checkpoint(), NOW).results)
    assert recall.lang == profit.lang == "zh" and recall.entity_hints == ("09981.HK",)
    assert "将召回4.8万辆Lumina SUV" in recall.body  # full-width digits folded by NFKC
    assert recall.published_at == datetime(2026, 3, 3, 9, 4, tzinfo=UTC)
    assert profit.published_at == datetime(2026, 3, 3, 8, 30, tzinfo=UTC)  # naive time in the feed's zone


def test_atom_feed() -> None:
    script = Script(httpx.Response(200, content=payload("atom.xml"), headers={"Content-Type": "application/atom+xml"}))
    meridian, pgex = items(rss_source(script).fetch(Checkpoint(), NOW).results)
    assert meridian.title == "Meridian Foods lifts margin target & buyback"
    assert meridian.published_at == datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
    assert meridian.url == "https://ledgerdaily.example/2026/03/03/meridian-margin"
    assert pgex.published_at == datetime(2026, 3, 3, 13, 10, tzinfo=UTC) and pgex.entity_hints == ("PGEX",)


GBK = payload("gbk_rss.xml")


@pytest.mark.parametrize(
    ("data", "content_type", "override"),
    [
        (GBK, "text/xml", None),  # declared gb2312, really GBK: widened to GB18030
        (GBK.replace(b' encoding="gb2312"', b""), "text/xml", None),  # no declaration, not UTF-8
        (GBK.replace(b"gb2312", b"utf-8"), "text/xml; charset=utf-8", None),  # declared UTF-8, bytes are GBK
        (GBK.replace(b"gb2312", b"iso-8859-1"), "text/xml", "gbk"),  # wrong declaration; the setting knows
    ],
)
def test_gbk_feeds_decode(data: bytes, content_type: str, override: str | None) -> None:
    script = Script(httpx.Response(200, content=data, headers={"Content-Type": content_type}))
    first, second = items(rss_source(script, encoding=override, timezone="+08:00").fetch(Checkpoint(), NOW).results)
    assert first.title == "快讯:北风银行(NWBK.US)获准在沪设立理财子公司" and first.entity_hints == ("NWBK",)
    assert "朱镕洺" in second.title and second.lang == "zh"


def test_to_utf8_rewrites_the_declaration() -> None:
    out = to_utf8('<?xml version="1.0" encoding="gbk"?><rss/>'.encode("gbk"))
    assert out.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert to_utf8(b"\xef\xbb\xbf<rss/>") == b"<rss/>"
    feed = '<?xml version="1.0" encoding="UTF-16"?><rss>股价</rss>'
    for codec in ("utf-16", "utf-16-be"):  # with its BOM (little-endian here), or big-endian with one
        data = feed.encode(codec) if codec == "utf-16" else codecs.BOM_UTF16_BE + feed.encode(codec)
        assert to_utf8(data, "text/xml") == '<?xml version="1.0" encoding="utf-8"?><rss>股价</rss>'.encode()
    assert to_utf8("<rss>é</rss>".encode("latin-1"), override="latin-1") == "<rss>é</rss>".encode()


def test_unknown_encoding_setting_fails_at_start() -> None:
    with pytest.raises(ConfigError, match="unknown encoding 'klingon'"):
        rss_source(Script(httpx.Response(200)), encoding="klingon")


def test_feed_that_changes_format() -> None:
    script = Script(httpx.Response(200, content=payload("en_rss.xml"), headers=RSS_TYPE),
                    httpx.Response(200, content=payload("atom.xml"), headers={"Content-Type": "application/atom+xml"}),
                    httpx.Response(200, content=payload("html_error.html"), headers={"Content-Type": "text/html"}))
    source = rss_source(script)
    assert len(items(source.fetch(Checkpoint(), NOW).results)) == 3
    assert len(items(source.fetch(Checkpoint(), NOW).results)) == 2  # moved to Atom: still read
    with pytest.raises(SourceError, match="did not return a readable feed .*Just a moment"):
        source.fetch(Checkpoint(), NOW)


def test_malformed_entries_are_skipped_not_fatal() -> None:
    data = payload("en_rss.xml").replace(b"<pubDate>Tue, 03 Mar 2026 08:40:00 GMT</pubDate>", b"")
    data = data.replace(b"<title>Northwind Bank passes regional stress test</title>", b"<title></title>")
    results = rss_source(Script(httpx.Response(200, content=data))).fetch(Checkpoint(), NOW).results
    assert [r.reason for r in results if isinstance(r, Skipped)] == ["missing_date", "missing_title"]
    assert len(items(results)) == 1


def test_items_dated_far_in_the_future_are_skipped() -> None:
    data = payload("en_rss.xml").replace(b"Tue, 03 Mar 2026 08:05:00 GMT", b"Tue, 03 Mar 2099 08:05:00 GMT")
    results = rss_source(Script(httpx.Response(200, content=data))).fetch(Checkpoint(), NOW).results
    skipped = [r for r in results if isinstance(r, Skipped)]
    assert [s.reason for s in skipped] == ["future_date"] and "2099" in skipped[0].excerpt


def feed_with_summary() -> bytes:
    return (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
            b"<title>Aurora Motors recalls 48,000 Lumina SUVs over battery fire risk</title>"
            b"<link>https://www.harborwire.example/aurora-recall</link>"
            b"<pubDate>Tue, 03 Mar 2026 09:15:00 GMT</pubDate><description>Recall announced.</description>"
            b"</item></channel></rss>")


def test_article_pages_replace_short_summaries(tmp_path: Path) -> None:
    pytest.importorskip("trafilatura")
    seen: set[str] = set()

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/f.xml":
            return httpx.Response(200, content=feed_with_summary(), headers=RSS_TYPE)
        return httpx.Response(200, content=payload("article.html"), headers={"Content-Type": "text/html"})

    script = Script(route)
    cfg = RssSourceSettings.model_validate({"type": "rss", "name": "hw", "url": "https://feeds.example/f.xml",
                                            "fetch_articles": True})
    ingest = IngestSettings(http=fast(), articles=ArticleSettings(host_interval_s=0))
    http = HttpClient(ingest.http, script.transport)
    articles = ArticleFetcher(ingest.articles, http, ingest.max_body_chars, lambda item: item.id in seen)
    source = RssSource(cfg, ingest, http, articles)
    [item] = items(source.fetch(Checkpoint(), NOW).results)
    assert "limit charging to 80%" in item.body and "Most read" not in item.body and "Privacy" not in item.body
    assert len(script.requests) == 2
    seen.add(item.id)
    [again] = items(source.fetch(Checkpoint(), NOW).results)
    assert again.body == "Recall announced." and len(script.requests) == 3  # seen items are not fetched again


def test_article_fetch_failure_keeps_the_summary() -> None:
    pytest.importorskip("trafilatura")

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/f.xml":
            return httpx.Response(200, content=feed_with_summary(), headers=RSS_TYPE)
        return httpx.Response(404, content=b"gone")

    script = Script(route)
    cfg = RssSourceSettings.model_validate({"type": "rss", "name": "hw", "url": "https://feeds.example/f.xml",
                                            "fetch_articles": True})
    ingest = IngestSettings(http=fast(), articles=ArticleSettings(host_interval_s=0))
    http = HttpClient(ingest.http, script.transport)
    source = RssSource(cfg, ingest, http, ArticleFetcher(ingest.articles, http, 20000, lambda item: False))
    [item] = items(source.fetch(Checkpoint(), NOW).results)
    assert item.body == "Recall announced."
