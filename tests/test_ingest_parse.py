"""Parsers: RSS/Atom through feedparser, JSON API responses through field mappings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from finsentinel.errors import ConfigError
from finsentinel.schema import RawItem, content_id
from ingest.normalize import clean_text, html_to_text, resolve_tz
from ingest.parse import (
    NEWSAPI,
    SOCIAL,
    JsonMapping,
    Skipped,
    _clean_title,
    mapping_for,
    parse_json_api,
    parse_rss,
)
from tests.parser_faults import poison_language_detection

FETCHED = datetime(2026, 3, 4, tzinfo=UTC)
SHANGHAI = resolve_tz("Asia/Shanghai")


def rss(*items: str, lang: str = "en-us") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://feed.example/</link><language>{lang}</language>{''.join(items)}</channel></rss>"
    ).encode()


def item(title: str, date: str | None, link: str = "https://feed.example/a", desc: str = "") -> str:
    when = f"<pubDate>{date}</pubDate>" if date is not None else ""
    return f"<item><title>{title}</title><link>{link}</link><description>{desc}</description>{when}</item>"


def only_items(results: list[RawItem | Skipped]) -> list[RawItem]:
    assert all(isinstance(r, RawItem) for r in results), results
    return [r for r in results if isinstance(r, RawItem)]


def test_parse_rss_english() -> None:
    data = rss(item("Kestrel Cloud ($KSTL) signs deal with Velora", "Mon, 02 Mar 2026 14:05:00 GMT",
                    desc="&lt;p&gt;The deal runs &lt;b&gt;five&lt;/b&gt; years.&lt;/p&gt;"))
    [got] = only_items(parse_rss(data, "wire", UTC, fetched_at=FETCHED))
    assert got.title == "Kestrel Cloud ($KSTL) signs deal with Velora"
    assert got.body == "The deal runs five years."
    assert got.url == "https://feed.example/a" and got.source == "wire" and got.lang == "en"
    assert got.published_at == datetime(2026, 3, 2, 14, 5, tzinfo=UTC) and got.fetched_at == FETCHED
    assert got.entity_hints == ("$KSTL",)
    assert got.id == content_id(got.url, got.title, got.body)


def test_parse_rss_chinese_with_offsets_and_naive_times() -> None:
    data = rss(
        item("极光汽车(09981.HK)召回4.8万辆汽车", "Tue, 03 Mar 2026 17:04:00 +0800", link="https://zh.example/1"),
        item("金海证券净利润同比增长２０％", "2026-03-03 17:04:00", link="https://zh.example/2"),
        lang="zh-cn",
    )
    first, second = only_items(parse_rss(data, "zh-feed", SHANGHAI, fetched_at=FETCHED))
    assert first.published_at == second.published_at == datetime(2026, 3, 3, 9, 4, tzinfo=UTC)
    assert first.lang == second.lang == "zh"
    assert first.entity_hints == ("09981.HK",)
    assert second.title == "金海证券净利润同比增长20%"  # full-width digits folded


def test_parse_rss_atom_is_read_too() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
    <feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
      <entry><title>Northwind Bank passes stress test</title><link href="https://atom.example/n"/>
        <id>tag:atom.example,2026:1</id><updated>2026-03-02T10:00:00Z</updated>
        <content type="html">&lt;p&gt;Capital held up.&lt;/p&gt;</content></entry></feed>"""
    [got] = only_items(parse_rss(atom, "atom", UTC, fetched_at=FETCHED))
    assert (got.title, got.body, got.url) == ("Northwind Bank passes stress test", "Capital held up.",
                                             "https://atom.example/n")
    assert got.published_at == datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_parse_rss_missing_and_bad_dates_are_skipped_with_reasons() -> None:
    data = rss(item("No date here", None), item("Broken date", "2026-03-03 25:61:00"),
               item("Fine", "Mon, 02 Mar 2026 14:05:00 GMT"))
    results = parse_rss(data, "wire", UTC, fetched_at=FETCHED)
    assert [r.reason for r in results if isinstance(r, Skipped)] == ["missing_date", "bad_date"]
    assert [r.title for r in results if isinstance(r, RawItem)] == ["Fine"]
    assert all(r.source == "wire" and r.excerpt for r in results if isinstance(r, Skipped))


def test_parse_rss_missing_title_is_skipped() -> None:
    results = parse_rss(rss(item("", "Mon, 02 Mar 2026 14:05:00 GMT")), "wire", UTC, fetched_at=FETCHED)
    assert [(r.source, r.reason) for r in results if isinstance(r, Skipped)] == [("wire", "missing_title")]


@pytest.mark.parametrize(("data", "reason"), [(b"this is not xml at all {", "bad_xml"),
                                              (b"<html><body><p>Moved</p></body></html>", "not_a_feed"),
                                              (b"", "empty"), (b"  \n", "empty")])
def test_parse_rss_unreadable_document_is_one_skip(data: bytes, reason: str) -> None:
    [skipped] = parse_rss(data, "wire", UTC, fetched_at=FETCHED)
    assert isinstance(skipped, Skipped) and skipped.reason == reason and skipped.source == "wire"


def test_parse_rss_entry_with_an_unparseable_link_does_not_sink_the_feed() -> None:
    # urlsplit raises ValueError on "http://[broken" (an unclosed IPv6 bracket); that must not fail
    # the whole feed: the other entries are kept and the odd link is used as it is.
    data = rss(item("Good entry", "Mon, 02 Mar 2026 14:05:00 GMT", link="https://feed.example/ok"),
               item("Entry with a broken link", "Mon, 02 Mar 2026 14:06:00 GMT", link="http://[broken/story"))
    got = only_items(parse_rss(data, "wire", UTC, fetched_at=FETCHED))
    assert [g.title for g in got] == ["Good entry", "Entry with a broken link"]
    assert got[1].url == "http://[broken/story" and got[1].id == content_id(got[1].url, got[1].title, got[1].body)


def test_unparseable_link_joined_to_url_base_does_not_sink_the_response() -> None:
    mapping = JsonMapping(items="data", title="t", time="at", url="link", url_base="https://news.example")
    doc = json.dumps({"data": [{"t": "Relative link", "at": "2026-03-02T14:05:00Z", "link": "/a/1"},
                               {"t": "Broken link", "at": "2026-03-02T14:06:00Z", "link": "http://[broken/2"}]})
    got = only_items(parse_json_api(doc.encode(), "api", mapping, UTC, fetched_at=FETCHED))
    assert [(g.title, g.url) for g in got] == [("Relative link", "https://news.example/a/1"),
                                               ("Broken link", "http://[broken/2")]


def test_parse_rss_valid_feed_without_items_is_empty_list() -> None:
    assert parse_rss(rss(), "wire", UTC, fetched_at=FETCHED) == []


def test_parse_rss_truncated_document_keeps_complete_items() -> None:
    data = rss(item("Complete item", "Mon, 02 Mar 2026 14:05:00 GMT"))[:-len("</channel></rss>")]
    data += b"<item><title>cut off mid"
    results = parse_rss(data, "wire", UTC, fetched_at=FETCHED)
    assert [r.title for r in results if isinstance(r, RawItem)] == ["Complete item"]
    assert all(isinstance(r, RawItem | Skipped) for r in results)


def test_parse_rss_declared_language_wins_over_detection() -> None:
    data = rss(item("Stocks slide as bond yields jump", "Mon, 02 Mar 2026 14:05:00 GMT"))
    [got] = only_items(parse_rss(data, "wire", UTC, lang="en", fetched_at=FETCHED))
    assert got.lang == "en"


def test_parse_rss_caps_long_bodies() -> None:
    data = rss(item("Long one", "Mon, 02 Mar 2026 14:05:00 GMT", desc="word " * 400))
    [got] = only_items(parse_rss(data, "wire", UTC, fetched_at=FETCHED, max_body_chars=300))
    assert len(got.body) == 300 and got.body.endswith("[…]")


def newsapi(*articles: dict[str, object], status: str = "ok") -> bytes:
    return json.dumps({"status": status, "totalResults": len(articles), "articles": list(articles)}).encode()


def article(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"source": {"id": None, "name": "Coastline"}, "title": "Meridian Foods lifts margin target",
                               "description": "Savings ahead of plan.", "url": "https://c.example/m",
                               "publishedAt": "2026-03-02T10:00:00Z"}
    return {**base, **fields}


def test_parse_json_newsapi() -> None:
    [got] = only_items(parse_json_api(newsapi(article()), "api", NEWSAPI, UTC, fetched_at=FETCHED))
    assert (got.title, got.body, got.url, got.lang) == ("Meridian Foods lifts margin target",
                                                        "Savings ahead of plan.", "https://c.example/m", "en")
    assert got.published_at == datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_parse_json_skips_bad_articles_with_reasons() -> None:
    data = newsapi(article(title=None, url="https://c.example/1"), article(title="[Removed]", url="https://c.example/2"),
                   article(publishedAt="soon", url="https://c.example/3"), "not an object",  # type: ignore[arg-type]
                   article(url="https://c.example/4"))
    results = parse_json_api(data, "api", NEWSAPI, UTC, fetched_at=FETCHED)
    reasons = [r.reason for r in results if isinstance(r, Skipped)]
    assert reasons == ["missing_title", "removed", "bad_date", "bad_entry"]
    assert [r.url for r in results if isinstance(r, RawItem)] == ["https://c.example/4"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"{not json", "bad_json"), (b"\xff\xfe\x00", "bad_json"),
     (json.dumps({"status": "error", "code": "rateLimited"}).encode(), "api_error"),
     (json.dumps({"status": "ok", "articles": {"a": 1}}).encode(), "bad_shape")],
)
def test_parse_json_document_errors(data: bytes, reason: str) -> None:
    [skipped] = parse_json_api(data, "api", NEWSAPI, UTC, fetched_at=FETCHED)
    assert isinstance(skipped, Skipped) and skipped.reason == reason


def test_parse_json_time_too_large_for_a_float_is_a_bad_date() -> None:
    # A timestamp ~400 digits long: float() raises OverflowError in parse_time.
    data = newsapi(article(publishedAt="HUGE", url="https://c.example/1"), article(url="https://c.example/2"))
    data = data.replace(b'"HUGE"', b"1" + b"0" * 400)
    results = parse_json_api(data, "api", NEWSAPI, UTC, fetched_at=FETCHED)
    assert [r.reason for r in results if isinstance(r, Skipped)] == ["bad_date"]


def test_placeholder_dates_before_1990_are_skipped_not_news() -> None:
    data = newsapi(article(publishedAt="1970-01-01T00:00:00Z", url="https://c.example/1"),
                   article(publishedAt="1899-12-31T00:00:00Z", url="https://c.example/2"),
                   article(publishedAt="1990-01-01T00:00:00Z", url="https://c.example/3"))
    results = parse_json_api(data, "api", NEWSAPI, UTC, fetched_at=FETCHED)
    skipped = [r for r in results if isinstance(r, Skipped)]
    assert [r.reason for r in skipped] == ["placeholder_date", "placeholder_date"]
    assert skipped[0].excerpt.startswith("1970-01-01T00:00:00+00:00: ")
    assert [r.url for r in results if isinstance(r, RawItem)] == ["https://c.example/3"]


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Language detection raises for a text with "poison" in it: a parser bug that hits one entry."""
    poison_language_detection(monkeypatch)


@pytest.mark.usefixtures("poisoned")
def test_json_row_the_parser_fails_on_is_skipped_and_the_rest_kept(caplog: pytest.LogCaptureFixture) -> None:
    data = newsapi(article(url="https://c.example/1"), article(title="A poison pill", url="https://c.example/2"),
                   article(url="https://c.example/3"))
    with caplog.at_level("WARNING", logger="ingest.parse"):
        results = parse_json_api(data, "api", NEWSAPI, UTC, fetched_at=FETCHED)
    assert [r.url if isinstance(r, RawItem) else r.reason for r in results] == [
        "https://c.example/1", "bad_entry", "https://c.example/3"]
    skipped = results[1]
    assert isinstance(skipped, Skipped) and skipped.source == "api"
    assert "RuntimeError: detector bug" in skipped.excerpt and "A poison pill" in skipped.excerpt
    [record] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "detector bug" in record.getMessage() and record.exc_info is not None


@pytest.mark.usefixtures("poisoned")
def test_rss_entry_the_parser_fails_on_is_skipped_and_the_rest_kept() -> None:
    date = "Mon, 02 Mar 2026 14:05:00 GMT"
    results = parse_rss(rss(item("Kestrel Cloud signs deal", date), item("A poison pill", date, "https://f.example/p"),
                            item("Northwind Bank passes", date)), "feed", fetched_at=FETCHED)
    assert [r.title if isinstance(r, RawItem) else r.reason for r in results] == [
        "Kestrel Cloud signs deal", "bad_entry", "Northwind Bank passes"]
    assert isinstance(results[1], Skipped) and "RuntimeError: detector bug" in results[1].excerpt


def test_parse_json_social_posts_with_epoch_and_naive_times() -> None:
    doc = {"data": [
        {"id": "1", "text": "$AURM down 20% premarket, not touching this", "created_at": 1772528400,
         "permalink": "https://s.example/1"},
        {"id": "2", "text": "极光汽车今天又跌了，先减仓", "created_at": "2026-03-03 17:00:00",
         "permalink": "https://s.example/2"},
    ]}
    en, zh = only_items(parse_json_api(json.dumps(doc).encode(), "social", SOCIAL, SHANGHAI, fetched_at=FETCHED))
    assert en.published_at == zh.published_at == datetime(2026, 3, 3, 9, tzinfo=UTC)
    assert (en.lang, zh.lang) == ("en", "zh") and en.body == "" and en.entity_hints == ("$AURM",)


def test_inline_mapping_with_nested_paths_and_top_level_list() -> None:
    mapping = mapping_for({"items": "", "title": "head.text", "time": "meta.ts", "url": "link"})
    data = json.dumps([{"head": {"text": "Jinhai Securities wins licence"}, "meta": {"ts": "2026-03-02T08:00:00+08:00"},
                        "link": "https://j.example/x"}]).encode()
    [got] = only_items(parse_json_api(data, "inline", mapping, UTC, fetched_at=FETCHED))
    assert got.title == "Jinhai Securities wins licence" and got.published_at == datetime(2026, 3, 2, tzinfo=UTC)


def test_mapping_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="unknown JSON mapping 'rss'"):
        mapping_for("rss")
    with pytest.raises(ConfigError, match=r"missing keys \['time'\]"):
        mapping_for({"items": "data", "title": "text"})
    assert mapping_for("newsapi") is NEWSAPI
    assert JsonMapping.from_dict({"items": "a", "title": "b", "time": "c"}).body is None


@pytest.mark.parametrize("title", [
    "  Kestrel\tCloud \r\n signs\u00a0deal  ", "贵州茅台\u3000一季度\u200b业绩", "ＡＢＣ　全角\x0bline\x0c", "a\u2028b\u0085c",
    "Q&amp;A: <b>Aurora</b> Motors", "x < y & z",
])
def test_a_plain_title_is_cleaned_as_the_html_path_would(title: str) -> None:
    assert _clean_title(title) == clean_text(html_to_text(title))
