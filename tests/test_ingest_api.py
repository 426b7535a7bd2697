"""JSON API sources: each preset against a recorded response, request building, keys, cursors, API errors."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from finsentinel.errors import ConfigError, SourceError
from finsentinel.schema import RawItem
from finsentinel.settings import ApiSourceSettings, IngestSettings
from ingest.parse import Skipped
from ingest.sources.api import OVERLAP_S, ApiSource
from ingest.sources.base import Checkpoint
from ingest.sources.http import HttpClient, HttpStatusError
from tests.test_ingest_http import Script, fast, payload

NOW = datetime(2026, 3, 3, 10, 30, tzinfo=UTC)
JSON = {"Content-Type": "application/json"}


def api(script: Script, **kw: object) -> ApiSource:
    cfg = ApiSourceSettings.model_validate({"type": "api", "name": "api", **kw})
    ingest = IngestSettings(http=fast())
    return ApiSource(cfg, ingest, HttpClient(ingest.http, script.transport))


def ok(name: str) -> httpx.Response:
    return httpx.Response(200, content=payload(name), headers=JSON)


def items(results: object) -> list[RawItem]:
    assert isinstance(results, list | tuple)
    return [r for r in results if isinstance(r, RawItem)]


def test_gdelt_artlist() -> None:
    script = Script(ok("gdelt_artlist.json"))
    source = api(script, preset="gdelt", params={"query": '"Aurora Motors" sourcelang:english'})
    en, zh, de = items(source.fetch(Checkpoint(), NOW).results)
    sent = script.requests[0].url
    assert sent.host == "api.gdeltproject.org" and sent.params["mode"] == "ArtList"
    assert sent.params["format"] == "json" and sent.params["query"] == '"Aurora Motors" sourcelang:english'
    assert sent.params["startdatetime"] == "20260302103000"  # lookback: one day before the first fetch
    assert (en.lang, zh.lang, de.lang) == ("en", "zh", "other")  # from the response's language field
    assert en.published_at == datetime(2026, 3, 3, 9, 30, tzinfo=UTC) and en.body == ""


def test_gdelt_no_matches_is_zero_items_not_an_error() -> None:
    fetch = api(Script(ok("gdelt_empty.json")), preset="gdelt", params={"query": "x"}).fetch(Checkpoint(), NOW)
    assert list(fetch.results) == []


def test_gdelt_text_error_fails_the_fetch() -> None:
    script = Script(httpx.Response(200, content=b"Your search contained a phrase that was too short.",
                                   headers={"Content-Type": "text/html"}))
    with pytest.raises(SourceError, match="did not return JSON.*too short"):
        api(script, preset="gdelt", params={"query": "x"}).fetch(Checkpoint(), NOW)


def test_newsapi_everything_with_key_header_and_since() -> None:
    script = Script(ok("newsapi_everything.json"))
    source = api(script, preset="newsapi", params={"q": "Jinhai OR Zhongtian", "language": "en"}, api_key="nk-1")
    since = NOW.timestamp() - 3600
    fetch = source.fetch(Checkpoint(since=since), NOW)
    request = script.requests[0]
    assert request.headers["x-api-key"] == "nk-1" and "nk-1" not in str(request.url)
    assert request.url.params["from"] == datetime.fromtimestamp(since - OVERLAP_S, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    jinhai, zhongtian = items(fetch.results)
    assert [r.reason for r in fetch.results if isinstance(r, Skipped)] == ["removed"]
    assert jinhai.entity_hints == ("600998.SH",) and zhongtian.url == "https://fintide.example/news/zhongtian-licence"


def test_newsapi_errors() -> None:
    with pytest.raises(HttpStatusError, match="401 \\(check the API key\\).*apiKeyInvalid"):
        api(Script(httpx.Response(401, content=payload("newsapi_error.json"))), preset="newsapi",
            params={"q": "x"}, api_key="bad").fetch(Checkpoint(), NOW)
    with pytest.raises(SourceError, match="mapping cannot read \\(api_error.*apiKeyInvalid"):
        api(Script(ok("newsapi_error.json")), preset="newsapi", params={"q": "x"}, api_key="k").fetch(Checkpoint(), NOW)


def test_newsapi_429_with_retry_after_is_retried() -> None:
    script = Script(httpx.Response(429, content=payload("newsapi_rate_limited.json"), headers={"Retry-After": "0"}),
                    ok("newsapi_everything.json"))
    fetch = api(script, preset="newsapi", params={"q": "x"}, api_key="k").fetch(Checkpoint(), NOW)
    assert len(items(fetch.results)) == 2 and len(script.requests) == 2


def test_finnhub_company_news(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINNHUB_TOKEN", "fh-secret")
    script = Script(ok("finnhub_company_news.json"))
    source = api(script, preset="finnhub", params={"symbol": "LMNP"}, api_key_env="FINNHUB_TOKEN")
    review, conference = items(source.fetch(Checkpoint(), NOW).results)
    request = script.requests[0]
    assert request.headers["x-finnhub-token"] == "fh-secret"
    assert dict(request.url.params) == {"symbol": "LMNP", "from": "2026-03-02", "to": "2026-03-03"}
    assert review.entity_hints == ("$LMNP",) and review.published_at == datetime(2026, 3, 3, 9, tzinfo=UTC)
    assert conference.body == "" and conference.source == "api"


def test_reddit_listing() -> None:
    script = Script(ok("reddit_new.json"))
    dd, daily = items(api(script, preset="reddit", params={"subreddit": "wallstreetbets"}).fetch(Checkpoint(), NOW)
                      .results)
    assert str(script.requests[0].url).startswith("https://www.reddit.com/r/wallstreetbets/new.json?")
    assert "subreddit" not in script.requests[0].url.params  # it went into the path
    assert dd.url == "https://www.reddit.com/r/wallstreetbets/comments/1b5kz9a/aurm_recall_is_bigger_than_people_think/"
    assert dd.entity_hints == ("$AURM",) and "puts printing" in dd.body and daily.body == ""


def test_stocktwits_stream_keeps_and_sends_its_cursor() -> None:
    script = Script(ok("stocktwits_symbol.json"))
    source = api(script, preset="stocktwits", params={"symbol": "AURM"})
    fetch = source.fetch(Checkpoint(), NOW)
    first, second = items(fetch.results)
    assert first.url == "https://stocktwits.com/chartsbyleo/message/571112234"
    assert second.entity_hints == ("$AURM", "$KSTL") and fetch.checkpoint.cursor == "571112234"
    source.fetch(fetch.checkpoint, NOW)
    assert script.requests[1].url.params["since"] == "571112234"
    assert script.requests[1].url.path == "/api/2/streams/symbol/AURM.json"


def test_stocktwits_error_status_in_body() -> None:
    with pytest.raises(SourceError, match="api_error.*Symbol not found"):
        api(Script(ok("stocktwits_error.json")), preset="stocktwits", params={"symbol": "NOPE"}).fetch(Checkpoint(),
                                                                                                       NOW)


def test_generic_api_with_an_inline_mapping() -> None:
    body = b'{"data": {"posts": [{"headline": "Kestrel Cloud opens Frankfurt region", "ts": "2026-03-03 09:00", ' \
           b'"link": "/p/1", "tickers": ["KSTL"]}]}, "next": "abc"}'
    script = Script(httpx.Response(200, content=body, headers=JSON))
    source = api(script, url="https://news.example/v1/posts", timezone="+01:00", cursor_param="after",
                 params={"lang": "en", "since": "{since:%Y-%m-%d}"},
                 mapping={"items": "data.posts", "title": "headline", "time": "ts", "url": "link",
                          "url_base": "https://news.example", "hints": "tickers", "cursor": "next"})
    fetch = source.fetch(Checkpoint(), NOW)
    [item] = items(fetch.results)
    assert item.url == "https://news.example/p/1" and item.published_at == datetime(2026, 3, 3, 8, tzinfo=UTC)
    assert item.entity_hints == ("$KSTL",) and fetch.checkpoint.cursor == "abc"
    source.fetch(fetch.checkpoint, NOW)
    assert script.requests[1].url.params["after"] == "abc" and script.requests[0].url.params["since"] == "2026-03-02"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"preset": "newsapi", "params": {"q": "x"}}, "needs an API key and none is set"),
        ({"preset": "newsapi", "params": {"q": "x"}, "api_key_env": "NO_SUCH_VAR_FS"}, "NO_SUCH_VAR_FS is empty"),
        ({"preset": "finnhub", "api_key": "k"}, "needs params \\['symbol'\\]"),
        ({"url": "https://x.example/api"}, "needs a mapping"),
        ({"mapping": "newsapi"}, "needs url or preset"),
        ({"url": "https://x.example/api", "mapping": "newsapi", "params": {"d": "{yesterday}"}}, "cannot be filled"),
    ],
)
def test_bad_api_settings_fail_at_start(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        api(Script(httpx.Response(200)), **settings)


def test_api_key_is_masked_in_settings_output() -> None:
    from finsentinel.settings import Settings, render_settings

    settings = Settings.model_validate({"ingest": {"sources": [
        {"type": "api", "name": "n", "preset": "newsapi", "params": {"q": "x"}, "api_key": "nk-very-secret"}]}})
    assert "nk-very-secret" not in render_settings(settings) and "**********" in render_settings(settings)
