"""The Elasticsearch index: the shared contract against a live cluster (integration), and the
client side (requests, templates, retries, error translation) against a scripted local node."""

from __future__ import annotations

import base64
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from alerting.index import BucketCount, BulkItemsError, make_index
from alerting.index import elastic_mapping as layout
from alerting.index.elastic import ElasticIndex
from finsentinel.errors import ConfigError, IndexStoreError
from finsentinel.schema import Label
from finsentinel.settings import IndexSettings
from tests.contract.index import T0, IndexContract, make_alert, scored
from tests.fake_elasticsearch import FakeElasticsearch, Request, fake_elasticsearch

ES_URL = os.environ.get("FINSENTINEL_ES_URL")


@pytest.mark.integration
@pytest.mark.skipif(not ES_URL, reason="set FINSENTINEL_ES_URL (e.g. http://localhost:9200) to run the "
                    "index contract against a live Elasticsearch")
class TestElasticIndexContract(IndexContract):
    @pytest.fixture
    def index(self) -> Iterator[ElasticIndex]:
        name = f"finsentinel-test-{uuid.uuid4().hex[:10]}"
        settings = IndexSettings(backend="elasticsearch", es_url=ES_URL or "", es_index=name,
                                 es_alerts_index=f"{name}_alerts", es_labels_index=f"{name}_labels",
                                 es_replicas=0, es_refresh="true")
        index = ElasticIndex(settings)
        yield index
        es = index._es().options(ignore_status=404)
        es.indices.delete(index=f"{name}-*,{name}_alerts,{name}_labels", ignore_unavailable=True, allow_no_indices=True)
        es.indices.delete_index_template(name=name)
        for component in layout.component_templates(settings):
            es.cluster.delete_component_template(name=component)
        es.ilm.delete_lifecycle(name=layout.policy_name(settings))
        index.close()


def settings_for(url: str, **overrides: Any) -> IndexSettings:
    fields: dict[str, Any] = {"es_backoff_s": 0.01, "es_max_backoff_s": 0.02, "es_max_retries": 2,
                              "es_timeout_s": 5, **overrides}
    return IndexSettings(backend="elasticsearch", es_url=url, **fields)


@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    with fake_elasticsearch() as node:
        yield node


def ok(body: Any = None) -> tuple[int, Any]:
    return 200, body if body is not None else {"acknowledged": True}


def test_make_index_builds_the_backend_without_connecting(fake: FakeElasticsearch) -> None:
    index = make_index(settings_for(fake.url))
    assert isinstance(index, ElasticIndex)
    assert fake.requests == []
    index.close()
    with pytest.raises(ConfigError, match="falls under the item indices"):
        ElasticIndex(settings_for(fake.url, es_alerts_index="finsentinel-news-alerts"))
    with pytest.raises(ConfigError, match="es_labels_index 'finsentinel-news' falls under .* finsentinel-news_labels"):
        ElasticIndex(settings_for(fake.url, es_labels_index="finsentinel-news"))


def test_ensure_puts_policy_templates_and_bootstraps_the_write_alias(fake: FakeElasticsearch) -> None:
    for method, path in (("PUT", "/_ilm/policy/.*"), ("PUT", "/_component_template/.*"),
                         ("PUT", "/_index_template/.*"), ("PUT", "/finsentinel-news-000001"),
                         ("PUT", "/finsentinel-alerts"), ("PUT", "/finsentinel-labels")):
        fake.on(method, path, ok())
    index = ElasticIndex(settings_for(fake.url, es_retention_days=30))
    index.ensure()
    assert fake.paths() == [
        "PUT /_ilm/policy/finsentinel-news-policy",
        "PUT /_component_template/finsentinel-news-settings",
        "PUT /_component_template/finsentinel-news-mappings",
        "PUT /_index_template/finsentinel-news",
        "HEAD /_alias/finsentinel-news",
        "HEAD /finsentinel-news",
        "PUT /finsentinel-news-000001",
        "HEAD /finsentinel-alerts",
        "PUT /finsentinel-alerts",
        "HEAD /finsentinel-labels",
        "PUT /finsentinel-labels",
    ]
    bodies = {r.path: r.body for r in fake.requests if r.method == "PUT"}
    policy = bodies["/_ilm/policy/finsentinel-news-policy"]["policy"]["phases"]
    assert policy["hot"]["actions"]["rollover"] == {"max_age": "7d", "max_primary_shard_size": "25gb"}
    assert policy["delete"] == {"min_age": "30d", "actions": {"delete": {}}}
    template = bodies["/_index_template/finsentinel-news"]
    assert template["index_patterns"] == ["finsentinel-news-*"]
    assert template["composed_of"] == ["finsentinel-news-settings", "finsentinel-news-mappings"]
    settings = bodies["/_component_template/finsentinel-news-settings"]["template"]["settings"]
    assert settings["index.lifecycle.rollover_alias"] == "finsentinel-news"
    assert bodies["/finsentinel-news-000001"] == {"aliases": {"finsentinel-news": {"is_write_index": True}}}
    assert bodies["/finsentinel-alerts"]["mappings"]["properties"]["key"] == {"type": "keyword"}
    assert bodies["/finsentinel-labels"]["mappings"] == layout.label_mappings()
    # Once the alias and the alerts and labels indices exist, ensure only re-puts the (idempotent) templates.
    fake.on("HEAD", "/_alias/finsentinel-news", ok({}))
    fake.on("HEAD", "/finsentinel-(alerts|labels)", ok({}))
    fake.requests.clear()
    index.ensure()
    assert not [p for p in fake.paths("PUT") if p.endswith(("-000001", "/finsentinel-alerts", "/finsentinel-labels"))]
    index.close()


def test_ensure_tolerates_a_concurrent_bootstrap_and_reports_a_plain_index(fake: FakeElasticsearch) -> None:
    fake.on("PUT", "/_.*", ok())
    exists = {"error": {"type": "resource_already_exists_exception", "reason": "exists",
                        "root_cause": [{"type": "resource_already_exists_exception", "reason": "exists"}]},
              "status": 400}
    fake.on("PUT", "/finsentinel-(news-000001|alerts|labels)", (400, exists))
    index = ElasticIndex(settings_for(fake.url, es_ilm=False))
    index.ensure()  # another worker created both first: fine
    assert not any("_ilm" in p for p in fake.paths())
    fake.on("HEAD", "/finsentinel-news", ok({}))
    with pytest.raises(IndexStoreError, match="is an index, not an alias"):
        index.ensure()
    index.close()


def test_mappings_are_explicit_and_the_cjk_analyzer_follows_the_setting() -> None:
    mappings = layout.item_mappings(IndexSettings())
    props = mappings["properties"]
    assert mappings["dynamic"] is False
    assert props["@timestamp"] == {"type": "date_nanos"}
    for keyword in ("topic", "sentiment", "entities", "source", "lang"):
        assert props[keyword] == {"type": "keyword"}
    assert props["title"]["analyzer"] == "english"
    assert props["title"]["fields"]["zh"]["analyzer"] == "cjk"
    assert props["search"] == {"type": "wildcard"}
    ik = layout.item_mappings(IndexSettings(es_cjk_analyzer="ik"))["properties"]["body"]["fields"]["zh"]
    assert (ik["analyzer"], ik["search_analyzer"]) == ("ik_max_word", "ik_smart")
    smartcn = layout.item_mappings(IndexSettings(es_cjk_analyzer="smartcn"))["properties"]["body"]["fields"]["zh"]
    assert smartcn["analyzer"] == "smartcn"


def test_documents_round_trip_and_carry_the_search_text() -> None:
    item = scored(1, "ＡＵＲＭ Recalls", "极光汽车 召回", entities=["aurora-motors"])
    doc = layout.item_document(item, "aurm recalls 极光汽车 召回")
    assert doc["@timestamp"] == doc["published_at"] and doc["search"] == "aurm recalls 极光汽车 召回"
    assert layout.item_from_source(doc) == item
    alert = make_alert("topic", "regulation")
    assert layout.alert_document(alert)["key"] == "regulation"
    assert layout.alert_from_source(layout.alert_document(alert)) == alert
    assert layout.wildcard_literal("a*b?c\\") == "a\\*b\\?c\\\\"


def _bulk_reply(statuses: dict[str, int]) -> Any:
    def reply(request: Request) -> tuple[int, Any]:
        items = []
        for action in request.body[::2]:
            meta = action["index"]
            status = statuses.get(meta["_id"], 201)
            item: dict[str, Any] = {"_index": meta["_index"], "_id": meta["_id"], "status": status}
            if status >= 300:
                kind = "es_rejected_execution_exception" if status == 429 else "document_parsing_exception"
                item["error"] = {"type": kind, "reason": f"refused {meta['_id']}"}
            items.append({"index": item})
        return 200, {"took": 1, "errors": any(s >= 300 for s in statuses.values()), "items": items}

    return reply


def _no_hits(request: Request) -> tuple[int, Any]:
    return ok({"hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}})


def test_upsert_routes_known_ids_to_their_backing_index_and_retries_rejected_items(fake: FakeElasticsearch) -> None:
    fake.on("POST", "/finsentinel-news/_search", ok({"hits": {"hits": [
        {"_index": "finsentinel-news-000001", "_id": "item-000001"}]}}))
    rejections = {"item-000002": 429}

    def bulk(request: Request) -> tuple[int, Any]:
        reply = _bulk_reply(dict(rejections))(request)
        rejections.clear()  # the retry succeeds
        return reply

    fake.on("PUT", "/_bulk", bulk)
    fake.on("POST", "/_bulk", bulk)
    index = ElasticIndex(settings_for(fake.url))
    items = [scored(1, "ＡＵＲＭ recalls cars"), scored(2, minutes=1), scored(2, "newer", minutes=2)]
    assert index.upsert(items) == 2
    bulks = [r for r in fake.requests if r.path == "/_bulk"]
    assert len(bulks) == 2  # the rejected item went again
    first = bulks[0].body
    assert [a["index"] for a in first[::2]] == [
        {"_index": "finsentinel-news-000001", "_id": "item-000001"},  # an update stays where the id lives
        {"_index": "finsentinel-news", "_id": "item-000002"},  # new ids go through the write alias
    ]
    assert first[1]["search"].startswith("aurm recalls cars") and first[3]["title"] == "newer"
    assert [a["index"]["_id"] for a in bulks[1].body[::2]] == ["item-000002"]
    assert bulks[0].query["refresh"] == ["false"]
    index.close()


def test_items_refused_for_good_are_reported_by_id_and_the_rest_written(fake: FakeElasticsearch) -> None:
    fake.on("POST", "/finsentinel-news/_search", _no_hits)
    fake.on("PUT", "/_bulk", _bulk_reply({"item-000002": 400}))
    index = ElasticIndex(settings_for(fake.url))
    with pytest.raises(BulkItemsError, match="refused 1 of 3 items") as caught:
        index.upsert([scored(1), scored(2), scored(3)])
    assert caught.value.written == 2
    assert caught.value.failed == {"item-000002": "document_parsing_exception: refused item-000002"}
    index.close()


def test_items_still_rejected_after_the_retries_fail_the_whole_batch(fake: FakeElasticsearch) -> None:
    fake.on("POST", "/finsentinel-news/_search", _no_hits)
    fake.on("PUT", "/_bulk", _bulk_reply({"item-000001": 429}))
    index = ElasticIndex(settings_for(fake.url))
    with pytest.raises(IndexStoreError, match="the batch will be retried") as caught:
        index.upsert([scored(1), scored(2)])
    assert not isinstance(caught.value, BulkItemsError)
    assert len([r for r in fake.requests if r.path == "/_bulk"]) == 3  # first try + es_max_retries
    index.close()


def test_a_rejected_request_is_retried_by_the_transport(fake: FakeElasticsearch) -> None:
    calls: list[int] = []

    def busy_then_ok(request: Request) -> tuple[int, Any]:
        calls.append(1)
        if len(calls) == 1:
            return 503, {"error": {"type": "unavailable", "reason": "busy", "root_cause": []}, "status": 503}
        return ok({"count": 7})

    fake.on("POST", "/finsentinel-news/_count", busy_then_ok)
    index = ElasticIndex(settings_for(fake.url))
    assert index.count() == 7
    assert len(calls) == 2
    index.close()


def test_credentials_come_from_settings(fake: FakeElasticsearch) -> None:
    fake.on("POST", "/finsentinel-news/_count", ok({"count": 0}))
    keyed = ElasticIndex(settings_for(fake.url, es_api_key="a2V5OnNlY3JldA==", es_username="ignored"))
    keyed.count()
    basic = ElasticIndex(settings_for(fake.url, es_username="elastic", es_password="s3cret"))  # noqa: S106
    basic.count()
    headers = [r.headers for r in fake.requests]
    assert headers[0]["authorization"] == "ApiKey a2V5OnNlY3JldA=="
    assert headers[1]["authorization"] == "Basic " + base64.b64encode(b"elastic:s3cret").decode()
    keyed.close()
    basic.close()


def test_errors_are_translated(fake: FakeElasticsearch) -> None:
    fake.on("POST", "/finsentinel-news/_count", (401, {"error": {"type": "security_exception", "reason": "no",
                                                                "root_cause": []}, "status": 401}))
    fake.on("POST", "/finsentinel-news/_search", (403, {"error": {"type": "security_exception", "reason": "denied",
                                                                 "root_cause": []}, "status": 403}))
    fake.on("POST", "/finsentinel-alerts/_search", (400, {"error": {
        "type": "search_phase_execution_exception", "reason": "bad",
        "root_cause": [{"type": "query_shard_exception", "reason": "bad query"}]}, "status": 400}))
    index = ElasticIndex(settings_for(fake.url))
    with pytest.raises(IndexStoreError, match="credentials were not accepted"):
        index.count()
    with pytest.raises(IndexStoreError, match="needs manage_ilm"):
        index.get("item-000001")
    with pytest.raises(IndexStoreError, match="alerts failed: .*bad query"):
        index.alerts()
    with pytest.raises(IndexStoreError, match="timezone-aware"):
        index.query(start=T0.replace(tzinfo=None))
    index.close()


def test_an_unreachable_cluster_is_one_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    index = ElasticIndex(settings_for(f"http://127.0.0.1:{port}", es_max_retries=0))
    with pytest.raises(IndexStoreError, match="cannot reach elasticsearch .* check alerting.index.es_url"):
        index.count()
    index.close()


def test_query_filters_and_pages_with_search_after(fake: FakeElasticsearch) -> None:
    pages = [[{"_source": layout.item_document(scored(n), ""), "sort": [n, f"item-{n}"]} for n in range(1000)],
             [{"_source": layout.item_document(scored(1000), ""), "sort": [1000, "x"]}]]

    def search(request: Request) -> tuple[int, Any]:
        return ok({"hits": {"hits": pages[len([r for r in fake.requests if r.path.endswith("_search")]) - 1]}})

    fake.on("POST", "/finsentinel-news/_search", search)
    index = ElasticIndex(settings_for(fake.url))
    found = index.query(start=T0, end=T0 + timedelta(hours=1), entity="aurora-motors", sentiment="negative",
                        text="Ｒecall 5*0", limit=None)
    assert len(found) == 1001
    first, second = (r.body for r in fake.requests)
    filters = first["query"]["bool"]["filter"]
    assert {"term": {"entities": "aurora-motors"}} in filters
    assert {"term": {"sentiment": "negative"}} in filters
    assert {"wildcard": {"search": {"value": "*recall*"}}} in filters
    assert {"wildcard": {"search": {"value": "*5\\*0*"}}} in filters
    assert filters[0]["range"]["@timestamp"]["lt"].startswith("2026-03-02T10:00:00")
    assert first["sort"] == [{"@timestamp": "desc"}, {"id": "asc"}]
    assert "search_after" not in first and second["search_after"] == [999, "item-999"]
    fake.on("POST", "/finsentinel-news/_search", ok({"hits": {"hits": []}}))
    index.query(fetched_after=T0, order="fetched")
    fetched = fake.requests[-1].body
    assert fetched["query"]["bool"]["filter"] == [{"range": {"fetched_at": {"gt": "2026-03-02T09:00:00+00:00"}}}]
    assert fetched["sort"] == [{"fetched_at": "asc"}, {"id": "asc"}]
    index.close()


def test_bucket_counts_page_through_a_composite_aggregation(fake: FakeElasticsearch) -> None:
    hour_ms = 3_600_000
    t0_ms = int(T0.timestamp() * 1000)
    replies = [
        {"c": {"after_key": {"b": t0_ms, "k": "b"}, "buckets": [
            {"key": {"b": t0_ms, "k": "a"}, "doc_count": 3, "neg": {"doc_count": 1}, "pos": {"doc_count": 2}},
            {"key": {"b": t0_ms, "k": "b"}, "doc_count": 1, "neg": {"doc_count": 0}, "pos": {"doc_count": 0}}]}},
        {"c": {"buckets": [{"key": {"b": t0_ms + hour_ms, "k": "a"}, "doc_count": 2, "neg": {"doc_count": 2},
                            "pos": {"doc_count": 0}}]}},
    ]

    def search(request: Request) -> tuple[int, Any]:
        return ok({"hits": {"hits": []}, "aggregations": replies[len(fake.requests) - 1]})

    fake.on("POST", "/finsentinel-news/_search", search)
    index = ElasticIndex(settings_for(fake.url))
    counts = index.bucket_counts(T0, T0 + timedelta(hours=2), 60, "entity")
    assert [(c.start - T0, c.key, c.total, c.negative, c.positive) for c in counts] == [
        (timedelta(0), "a", 3, 1, 2), (timedelta(0), "b", 1, 0, 0), (timedelta(hours=1), "a", 2, 2, 0)]
    first, second = (r.body for r in fake.requests)
    sources = first["aggs"]["c"]["composite"]["sources"]
    assert sources == [{"b": {"date_histogram": {"field": "@timestamp", "fixed_interval": "60m"}}},
                       {"k": {"terms": {"field": "entities"}}}]
    assert second["aggs"]["c"]["composite"]["after"] == {"b": t0_ms, "k": "b"}
    assert first["aggs"]["c"]["aggs"] == {"neg": {"filter": {"term": {"sentiment": "negative"}}},
                                          "pos": {"filter": {"term": {"sentiment": "positive"}}}}
    with pytest.raises(IndexStoreError, match="expected by="):
        index.bucket_counts(T0, T0, 60, "company")  # type: ignore[arg-type]
    index.close()


def test_one_keys_buckets_are_a_filter_not_a_terms_source(fake: FakeElasticsearch) -> None:
    t0_ms = int(T0.timestamp() * 1000)
    fake.on("POST", "/finsentinel-news/_search", lambda request: ok({"hits": {"hits": []}, "aggregations": {
        "c": {"buckets": [{"key": {"b": t0_ms}, "doc_count": 4, "neg": {"doc_count": 3}, "pos": {"doc_count": 1}}]}}}))
    index = ElasticIndex(settings_for(fake.url))
    counts = index.bucket_counts(T0, T0 + timedelta(hours=2), 60, "entity", key="aurora-motors")
    assert counts == [BucketCount(T0, "aurora-motors", 4, 3, 1)]
    body = fake.requests[0].body
    assert body["query"]["bool"]["filter"][1] == {"term": {"entities": "aurora-motors"}}
    assert body["aggs"]["c"]["composite"]["sources"] == [
        {"b": {"date_histogram": {"field": "@timestamp", "fixed_interval": "60m"}}}]
    index.close()


def test_labels_are_written_by_item_id_and_read_newest_first(fake: FakeElasticsearch) -> None:
    fake.on("PUT", "/_bulk", _bulk_reply({}))
    fake.on("HEAD", "/finsentinel-labels", ok({}))
    label = Label(item_id="item-000001", text="Aurora recall", lang="en", sentiment="negative", by="a",
                  created_at=T0)
    fake.on("POST", "/finsentinel-labels/_search", lambda request: ok(
        {"hits": {"hits": [{"_source": layout.label_document(label), "sort": [1]}]}}))
    index = ElasticIndex(settings_for(fake.url))
    index.upsert_labels([label])
    assert index.labels(since=T0) == [label]
    head, bulk, search = fake.requests
    assert (head.method, head.path) == ("HEAD", "/finsentinel-labels")
    assert bulk.body[0] == {"index": {"_index": "finsentinel-labels", "_id": "item-000001"}}
    assert search.body["query"] == {"bool": {"filter": [{"range": {"created_at": {"gte": "2026-03-02T09:00:00+00:00"}}}]}}
    assert search.body["sort"] == [{"created_at": "desc"}, {"item_id": "asc"}]
    fake.requests.clear()
    assert index.labels(item_id="item-000001") == [label]  # one item's label: what `finsentinel label` keeps from
    assert fake.requests[-1].body["query"] == {"bool": {"filter": [{"term": {"item_id": "item-000001"}}]}}
    index.close()


def test_a_label_written_before_ensure_makes_the_labels_index_with_its_mappings(fake: FakeElasticsearch) -> None:
    """`finsentinel label` against a cluster no worker of this version has ensured: the bulk write would
    otherwise auto-create the index with dynamic mappings (item_id as text), which no sort could read."""
    fake.on("PUT", "/_bulk", _bulk_reply({}))
    fake.on("PUT", "/finsentinel-labels", ok())
    index = ElasticIndex(settings_for(fake.url, es_replicas=2))
    index.upsert_labels([Label(item_id="item-000001", text="Aurora recall", lang="en", sentiment="negative",
                               by="a", created_at=T0)])
    assert [f"{r.method} {r.path}" for r in fake.requests] == [
        "HEAD /finsentinel-labels", "PUT /finsentinel-labels", "PUT /_bulk"]
    assert fake.requests[1].body == {"mappings": layout.label_mappings(),
                                     "settings": {"number_of_shards": 1, "number_of_replicas": 2}}
    index.close()


def test_alerts_are_bulk_written_to_their_index(fake: FakeElasticsearch) -> None:
    fake.on("PUT", "/_bulk", _bulk_reply({}))
    index = ElasticIndex(settings_for(fake.url))
    alert = make_alert()
    index.upsert_alerts([alert])
    index.upsert_alerts([])
    (bulk,) = [r for r in fake.requests if r.path == "/_bulk"]
    assert bulk.body[0] == {"index": {"_index": "finsentinel-alerts", "_id": alert.id}}
    assert bulk.body[1]["key"] == "aurora-motors"
    fake.on("PUT", "/_bulk", _bulk_reply({alert.id: 400}))
    with pytest.raises(IndexStoreError, match="1 alerts were not stored"):
        index.upsert_alerts([alert])
    index.close()
