"""The index contract: every :class:`alerting.index.base.Index` backend passes these tests.

A backend's test module subclasses :class:`IndexContract` and provides the ``index``
fixture: a fresh, empty index on which ``ensure`` has not been called yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from alerting.index.base import BucketCount, Index, Scope
from finsentinel.schema import Alert, Headline, Label, ScoredItem, Sentiment, alert_id

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def scored(
    n: int,
    title: str = "",
    body: str = "",
    minutes: int = 0,
    sentiment: Sentiment = "neutral",
    topic: str = "markets",
    entities: Sequence[str] = (),
    lang: str = "en",
) -> ScoredItem:
    """A scored item with id ``item-<n>`` published ``minutes`` after T0."""
    when = T0 + minutes * MIN
    score = {"negative": -0.7, "neutral": 0.0, "positive": 0.6}[sentiment]
    return ScoredItem(
        id=f"item-{n:06d}", source="wire", url=f"https://news.example/{n}", title=title or f"headline {n}",
        body=body, lang=lang, published_at=when, fetched_at=when + MIN, topic=topic,
        topic_scores={topic: 0.9}, sentiment=sentiment, sentiment_scores={sentiment: 0.9},
        sentiment_score=score, entities=tuple(entities), model_version="contract",
    )


def make_alert(scope: Scope = "entity", key: str | None = "aurora-motors", start: datetime = T0,
               hours: int = 2) -> Alert:
    return Alert(
        id=alert_id(scope, key, start), scope=scope,
        entity=key if scope == "entity" else None, topic=key if scope == "topic" else None,
        start=start, end=start + timedelta(hours=hours), bucket_minutes=60, observed=12, expected=1.5,
        total=15, share=0.8, baseline_share=0.15, p_value=1e-9, severity="high",
        headlines=(Headline(id="item-000001", title="极光汽车 召回", url=None, source="wire",
                            published_at=start, sentiment_score=-0.9),),
        sources=("wire",), created_at=start + timedelta(hours=1),
    )


def ids(items: Sequence[ScoredItem]) -> list[str]:
    return [i.id for i in items]


class IndexContract:
    """Behaviour every Index backend shares; subclasses provide the ``index`` fixture."""

    @pytest.fixture
    def index(self) -> Index:
        raise NotImplementedError("a backend's test class provides the index fixture")

    def test_satisfies_the_protocol(self, index: Index) -> None:
        assert isinstance(index, Index)

    def test_ensure_is_idempotent(self, index: Index) -> None:
        index.ensure()
        index.ensure()
        assert index.count() == 0
        index.upsert([scored(1)])
        index.ensure()
        assert index.count() == 1

    def test_upsert_by_id_updates_and_never_duplicates(self, index: Index) -> None:
        index.ensure()
        first = scored(1, "Aurora opens a plant", minutes=5, sentiment="positive", entities=["aurora-motors"])
        assert index.upsert([first, scored(2, minutes=6)]) == 2
        changed = scored(1, "Aurora recalls cars", minutes=7, sentiment="negative", topic="product",
                         entities=["pacific-grid"])
        assert index.upsert([changed]) == 1
        assert index.upsert([changed, changed]) == 1
        assert index.count() == 2
        assert index.get("item-000001") == changed
        assert ids(index.query(text="recalls")) == ["item-000001"]
        assert index.query(text="plant") == []
        assert index.query(entity="aurora-motors") == []
        assert ids(index.query(entity="pacific-grid")) == ["item-000001"]
        assert ids(index.query(sentiment="negative", topic="product")) == ["item-000001"]

    def test_upsert_of_nothing_writes_nothing(self, index: Index) -> None:
        index.ensure()
        assert index.upsert([]) == 0
        assert index.count() == 0

    def test_get_of_an_unknown_id_is_none(self, index: Index) -> None:
        index.ensure()
        assert index.get("no-such-item") is None

    def test_query_filters_and_orders_newest_first(self, index: Index) -> None:
        index.ensure()
        index.upsert([
            scored(1, minutes=0, sentiment="negative", topic="earnings", entities=["aurora-motors"]),
            scored(2, minutes=10, sentiment="neutral", topic="earnings", entities=["aurora-motors", "lumen-pharma"]),
            scored(3, minutes=20, sentiment="negative", topic="regulation", entities=["lumen-pharma"]),
            scored(4, minutes=30, sentiment="positive", topic="regulation"),
        ])
        assert ids(index.query()) == ["item-000004", "item-000003", "item-000002", "item-000001"]
        assert ids(index.query(start=T0 + 10 * MIN, end=T0 + 30 * MIN)) == ["item-000003", "item-000002"]
        assert ids(index.query(entity="aurora-motors")) == ["item-000002", "item-000001"]
        assert ids(index.query(entity="lumen-pharma", sentiment="negative")) == ["item-000003"]
        assert ids(index.query(topic="regulation")) == ["item-000004", "item-000003"]
        assert ids(index.query(topic="earnings", end=T0 + 10 * MIN)) == ["item-000001"]
        assert ids(index.query(limit=2)) == ["item-000004", "item-000003"]
        assert len(index.query(limit=None)) == 4
        assert index.query(entity="nobody") == []

    def test_query_by_fetch_time(self, index: Index) -> None:
        index.ensure()
        # published in one order, fetched in another (a slow feed delivers old news late)
        fetched = {1: 50, 2: 20, 3: 35, 4: 40}
        index.upsert([scored(n, minutes=10 * n).model_copy(update={"fetched_at": T0 + fetched[n] * MIN})
                      for n in fetched])
        assert ids(index.query(fetched_after=T0 + 35 * MIN, limit=None)) == ["item-000004", "item-000001"]
        assert ids(index.query(start=T0 + 30 * MIN, fetched_after=T0 + 20 * MIN)) == ["item-000004", "item-000003"]
        assert ids(index.query(order="fetched")) == ["item-000002", "item-000003", "item-000004", "item-000001"]
        assert ids(index.query(fetched_after=T0 + 20 * MIN, order="fetched", limit=2)) == [
            "item-000003", "item-000004"]
        index.upsert([scored(2, minutes=20).model_copy(update={"fetched_at": T0 + 60 * MIN})])  # fetched again
        assert ids(index.query(fetched_after=T0 + 50 * MIN)) == ["item-000002"]

    def test_text_search_in_english(self, index: Index) -> None:
        index.ensure()
        index.upsert([
            scored(1, "Northwind Bank faces REGULATOR fine", "The fine follows a probe."),
            scored(2, "Aurora Motors recalls 20,000 cars", "Brake defect found.", minutes=1),
            scored(3, "Markets calm", "Fine weather for investors.", minutes=2),
        ])
        assert ids(index.query(text="regulator")) == ["item-000001"]
        assert ids(index.query(text="fine")) == ["item-000003", "item-000001"]
        assert ids(index.query(text="fine probe")) == ["item-000001"]
        assert ids(index.query(text="brake")) == ["item-000002"]  # in the body
        assert ids(index.query(text="recall")) == ["item-000002"]  # a substring of a word
        assert index.query(text="fine brake") == []

    def test_text_search_in_chinese_finds_substrings(self, index: Index) -> None:
        index.ensure()
        index.upsert([
            scored(1, "金海证券涉嫌违规被立案调查", "公司暴雷事件持续发酵", lang="zh"),
            scored(2, "极光汽车发布新车", "销量增长强劲", minutes=1, lang="zh"),
            scored(3, "中天半导体业绩暴增", minutes=2, lang="zh"),
        ])
        assert ids(index.query(text="金海证券")) == ["item-000001"]
        assert ids(index.query(text="暴雷")) == ["item-000001"]  # two characters, inside a longer run
        assert ids(index.query(text="立案调查")) == ["item-000001"]
        assert ids(index.query(text="暴")) == ["item-000003", "item-000001"]
        assert ids(index.query(text="极光 增长")) == ["item-000002"]
        assert index.query(text="北风银行") == []

    def test_text_search_normalises_width_and_case(self, index: Index) -> None:
        index.ensure()
        index.upsert([scored(1, "ＡＵＲＭ 股价下跌", lang="zh"), scored(2, "PGEX rallies", minutes=1)])
        assert ids(index.query(text="aurm")) == ["item-000001"]
        assert ids(index.query(text="ｐｇｅｘ")) == ["item-000002"]

    def test_text_search_matches_exact_substrings_only(self, index: Index) -> None:
        index.ensure()
        index.upsert([scored(1, "abcd bcde"), scored(2, "shares down 50%", minutes=1), scored(3, "up 510", minutes=2)])
        assert index.query(text="abcde") == []  # every trigram occurs, the string does not
        assert ids(index.query(text="50%")) == ["item-000002"]
        assert index.query(text="5_0") == []  # wildcards are literal

    def test_text_search_combines_with_filters(self, index: Index) -> None:
        index.ensure()
        index.upsert([
            scored(1, "Aurora recall widens", sentiment="negative", entities=["aurora-motors"]),
            scored(2, "Aurora recall ends", minutes=5, sentiment="positive", entities=["aurora-motors"]),
        ])
        assert ids(index.query(text="recall", sentiment="negative")) == ["item-000001"]
        assert ids(index.query(text="recall", start=T0 + MIN)) == ["item-000002"]

    def test_bucket_counts_per_scope(self, index: Index) -> None:
        index.ensure()
        index.upsert([
            scored(1, minutes=5, sentiment="negative", topic="earnings", entities=["aurora-motors"]),
            scored(2, minutes=50, sentiment="neutral", topic="earnings", entities=["aurora-motors", "lumen-pharma"]),
            scored(3, minutes=65, sentiment="negative", topic="regulation", entities=["lumen-pharma"]),
            scored(4, minutes=130, sentiment="negative", topic="earnings"),
        ])
        h = timedelta(hours=1)
        start, end = T0 - h, T0 + 4 * h
        assert index.bucket_counts(start, end, 60, "overall") == [
            BucketCount(T0, None, 2, 1), BucketCount(T0 + h, None, 1, 1), BucketCount(T0 + 2 * h, None, 1, 1),
        ]
        assert index.bucket_counts(start, end, 60, "topic") == [
            BucketCount(T0, "earnings", 2, 1), BucketCount(T0 + h, "regulation", 1, 1),
            BucketCount(T0 + 2 * h, "earnings", 1, 1),
        ]
        assert index.bucket_counts(start, end, 60, "entity") == [
            BucketCount(T0, "aurora-motors", 2, 1), BucketCount(T0, "lumen-pharma", 1, 0),
            BucketCount(T0 + h, "lumen-pharma", 1, 1),
        ]
        # one key: the same buckets as the key's share of the whole; other keys of its items left out
        assert index.bucket_counts(start, end, 60, "entity", key="lumen-pharma") == [
            BucketCount(T0, "lumen-pharma", 1, 0), BucketCount(T0 + h, "lumen-pharma", 1, 1)]
        assert index.bucket_counts(start, end, 60, "topic", key="earnings") == [
            BucketCount(T0, "earnings", 2, 1), BucketCount(T0 + 2 * h, "earnings", 1, 1)]
        assert index.bucket_counts(start, end, 60, "entity", key="nobody") == []
        assert index.bucket_counts(start, end, 60, "overall", key="ignored") == index.bucket_counts(
            start, end, 60, "overall")
        assert index.bucket_counts(T0, T0 + 3 * h, 180, "overall") == [BucketCount(T0, None, 4, 3)]
        index.upsert([scored(5, minutes=10, sentiment="positive", topic="earnings", entities=["lumen-pharma"])])
        assert index.bucket_counts(T0, T0 + h, 60, "overall") == [BucketCount(T0, None, 3, 1, 1)]
        assert index.bucket_counts(T0, T0 + h, 60, "topic", key="earnings") == [BucketCount(T0, "earnings", 3, 1, 1)]
        assert index.bucket_counts(T0, T0 + h, 60, "entity") == [
            BucketCount(T0, "aurora-motors", 2, 1, 0), BucketCount(T0, "lumen-pharma", 2, 0, 1)]
        assert index.bucket_counts(T0 + h, T0 + 2 * h, 30, "overall") == [BucketCount(T0 + h, None, 1, 1)]
        assert all(b.start.tzinfo is not None for b in index.bucket_counts(start, end, 60, "overall"))

    def test_alerts_round_trip_and_upsert_by_id(self, index: Index) -> None:
        index.ensure()
        company = make_alert()
        topic = make_alert("topic", "regulation", T0 + timedelta(hours=5))
        overall = make_alert("overall", None, T0 + timedelta(hours=10))
        index.upsert_alerts([company, topic, overall])
        assert index.alerts() == [overall, topic, company]
        escalated = company.model_copy(update={"status": "escalated", "observed": 20})
        index.upsert_alerts([escalated])
        assert index.alerts(scope="entity") == [escalated]
        assert index.alerts(scope="topic", key="regulation") == [topic]
        assert index.alerts(key="nobody") == []
        # Time filters select alerts whose window overlaps [start, end).
        assert index.alerts(start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=6)) == [topic, escalated]
        assert index.alerts(start=T0 + timedelta(hours=2), end=T0 + timedelta(hours=5)) == []
        assert index.alerts(limit=1) == [overall]
        index.upsert_alerts([])
        assert len(index.alerts(limit=None)) == 3

    def test_labels_round_trip_and_a_later_label_replaces_an_earlier_one(self, index: Index) -> None:
        index.ensure()
        first = Label(item_id="item-000001", text="极光汽车召回 4.8万辆", lang="zh", sentiment="neutral",
                      by="analyst-a", predicted_sentiment="positive", created_at=T0)
        topic_only = Label(item_id="item-000002", text="Aurora names a CFO", lang="en", topic="Personnel Change",
                           by="analyst-b", note="not M&A", created_at=T0 + MIN)
        index.upsert_labels([first, topic_only])
        assert index.labels() == [topic_only, first]
        again = first.model_copy(update={"sentiment": "negative", "by": "analyst-c", "created_at": T0 + 2 * MIN})
        index.upsert_labels([again])
        assert index.labels() == [again, topic_only]
        assert index.labels(since=T0 + MIN) == [again, topic_only]  # since is inclusive
        assert index.labels(since=T0 + 2 * MIN + timedelta(microseconds=1)) == []
        assert index.labels(limit=1) == [again]
        assert index.labels(item_id="item-000002") == [topic_only]
        assert index.labels(item_id="item-000009") == []
        index.upsert_labels([])
        assert len(index.labels()) == 2

    def test_close_then_use_again(self, index: Index) -> None:
        index.ensure()
        index.upsert([scored(1)])
        index.close()
        assert index.count() == 1
        index.close()
        index.close()
