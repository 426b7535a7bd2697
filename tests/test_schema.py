"""Schema: strict JSON round-trip, content ids, UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from finsentinel.errors import SchemaError
from finsentinel.schema import Alert, RawItem, ScoredItem, alert_id, canonical_url, content_id

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def raw(**kw: object) -> RawItem:
    fields: dict[str, object] = {"id": content_id("https://n.example/a", "t"), "source": "feed", "url": "https://n.example/a",
                                 "title": "Aurora Motors recalls cars", "lang": "en", "published_at": T0, "fetched_at": T0}
    fields.update(kw)
    return RawItem(**fields)  # type: ignore[arg-type]


def test_raw_round_trip_and_frozen() -> None:
    item = raw(entity_hints=("AURM",), body="Body 正文")
    assert RawItem.from_json(item.to_json()) == item
    with pytest.raises(ValueError):
        item.title = "x"  # type: ignore[misc]


def test_scored_round_trip() -> None:
    scored = ScoredItem.from_raw(raw(), topic="Company | Product News", topic_scores={"Company | Product News": 0.9},
                                 sentiment="negative", sentiment_scores={"negative": 0.8, "neutral": 0.1, "positive": 0.1},
                                 sentiment_score=-0.7, entities=("aurora-motors",), model_version="m@1")
    assert ScoredItem.from_json(scored.to_json()) == scored
    assert RawItem.from_json(raw().to_json()).text == "Aurora Motors recalls cars"


def test_timestamps_become_utc_and_naive_is_rejected() -> None:
    shanghai = timezone(timedelta(hours=8))
    item = raw(published_at=datetime(2026, 3, 2, 17, 30, tzinfo=shanghai))
    assert item.published_at == T0 and item.published_at.tzinfo == UTC
    with pytest.raises(ValueError, match="no time zone"):
        raw(published_at=datetime(2026, 3, 2, 9, 30))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"not json", "not a valid RawItem"),
        (b'{"schema_version": 2}', "schema_version"),
        (raw().to_json().replace(b'"lang":"en"', b'"lang":"fr"'), "lang"),
        (raw().to_json()[:-1] + b',"extra":1}', "extra"),
    ],
)
def test_bad_messages_raise_schema_error(payload: bytes, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        RawItem.from_json(payload)


def test_scored_requires_valid_sentiment() -> None:
    bad = raw().to_json()[:-1] + b',"topic":"x","topic_scores":{},"sentiment":"angry","sentiment_scores":{},' \
        b'"sentiment_score":0,"model_version":"m"}'
    with pytest.raises(SchemaError, match="sentiment"):
        ScoredItem.from_json(bad)


def test_content_id_ignores_tracking_and_case_in_host() -> None:
    a = content_id("https://News.Example/a/?utm_source=x&id=3#frag", "one")
    b = content_id("https://news.example/a?id=3", "another title")
    assert a == b
    assert canonical_url("https://x.example/p?b=2&a=1&utm_medium=m") == "https://x.example/p?a=1&b=2"
    # without URL: normalised text (full-width, case, spaces) decides
    assert content_id(None, "ＡＢＣ  股价 暴跌") == content_id(None, "abc 股价 暴跌")
    assert content_id(None, "one") != content_id(None, "two")


def test_alert_ids_are_stable_per_episode() -> None:
    assert alert_id("entity", "x", T0) == alert_id("entity", "x", T0.astimezone(timezone(timedelta(hours=8))))
    assert alert_id("entity", "x", T0) != alert_id("topic", "x", T0)
    alert = Alert(id=alert_id("entity", "x", T0), scope="entity", entity="x", start=T0, end=T0, bucket_minutes=60,
                  observed=9, expected=1.5, total=12, share=0.75, baseline_share=0.15, p_value=1e-6, severity="high")
    assert Alert.from_json(alert.to_json()) == alert
