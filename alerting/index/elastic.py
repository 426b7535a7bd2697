"""The Elasticsearch index backend (elasticsearch 9.x client); the only module importing it.

Layout (templates, mappings, ILM) is in :mod:`alerting.index.elastic_mapping`. Behaviour:

* the client is built on first use (constructors do no I/O) with API key or basic auth and TLS
  verification from settings; requests that fail with 429/502/503/504 or time out are retried
  with exponential backoff by the transport;
* ``ensure`` puts the ILM policy, the component and index templates (idempotent PUTs) and
  bootstraps ``<alias>-000001`` as the write index of the alias, and the alerts index, unless
  they exist (a concurrent worker creating them first is fine);
* ``upsert`` writes with the bulk helper: items rejected with 429 are retried with backoff;
  ids are content-derived, and an id already stored in an older (rolled-over) backing index is
  written back there, so re-delivery updates instead of duplicating. Items that still fail
  transiently (429, 5xx) raise :class:`IndexStoreError` (the worker retries the batch); items
  refused for good (e.g. a mapping error) raise :class:`BulkItemsError` naming them, after the
  others were written, so the worker dead-letters exactly those. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    TransportError,
    helpers,
)
from elasticsearch.exceptions import SSLError

from alerting.index import elastic_mapping as layout
from alerting.index.base import BucketCount, BulkItemsError, QueryOrder, Scope
from alerting.index.text import search_terms, search_text
from finsentinel.errors import ConfigError, IndexStoreError, SchemaError
from finsentinel.schema import Alert, Label, ScoredItem, Sentiment
from finsentinel.settings import IndexSettings

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PAGE = 1000
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
_BUCKET_FIELD: dict[str, str | None] = {"entity": "entities", "topic": "topic", "overall": None}


def _iso(value: datetime, name: str) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise IndexStoreError(
            f"{name}: expected a timezone-aware datetime, got naive {value.isoformat()}; "
            "pass e.g. datetime(..., tzinfo=UTC)"
        )
    return value.astimezone(UTC).isoformat()


def _reason(info: dict[str, Any]) -> str:
    error = info.get("error")
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
    return str(error or f"status {info.get('status')}")


class ElasticIndex:
    """Elasticsearch implementation of :class:`alerting.index.base.Index` (lazy connection)."""

    def __init__(self, settings: IndexSettings) -> None:
        for key, name in (("es_alerts_index", settings.es_alerts_index), ("es_labels_index", settings.es_labels_index)):
            if name == settings.es_index or name.startswith(settings.es_index + "-"):
                raise ConfigError(
                    f"alerting.index.{key} {name!r} falls under the item indices {settings.es_index}-*; choose "
                    f"a name outside that pattern, e.g. {settings.es_index}_{key.removeprefix('es_').split('_')[0]}"
                )
        self.settings = settings
        self.alias = settings.es_index
        self.alerts_index = settings.es_alerts_index
        self.labels_index = settings.es_labels_index
        self._client: Elasticsearch | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def _es(self) -> Elasticsearch:
        if self._client is None:
            s = self.settings
            auth: dict[str, Any] = {}
            if s.es_api_key is not None:
                auth["api_key"] = s.es_api_key.get_secret_value()
            elif s.es_username is not None:
                password = s.es_password.get_secret_value() if s.es_password is not None else ""
                auth["basic_auth"] = (s.es_username, password)
            tls: dict[str, Any] = {}
            if s.es_url.startswith("https"):
                tls["verify_certs"] = s.es_verify_certs
                if s.es_ca_certs is not None:
                    tls["ca_certs"] = str(s.es_ca_certs)
            self._client = Elasticsearch(
                s.es_url, **auth, **tls, request_timeout=s.es_timeout_s, max_retries=s.es_max_retries,
                retry_on_status=(429, 502, 503, 504), retry_on_timeout=True,
                retry_backoff_base=s.es_backoff_s, retry_backoff_cap=s.es_max_backoff_s,
            )
        return self._client

    @contextmanager
    def _guard(self, operation: str) -> Iterator[Elasticsearch]:
        """Translate client errors into :class:`IndexStoreError` that say what to fix."""
        url = self.settings.es_url
        try:
            yield self._es()
        except AuthenticationException as exc:
            raise IndexStoreError(
                f"elasticsearch {url}: {operation} was refused: the credentials were not accepted (401); "
                "set alerting.index.es_api_key, or es_username and es_password"
            ) from exc
        except AuthorizationException as exc:
            raise IndexStoreError(
                f"elasticsearch {url}: {operation} was forbidden (403: {exc.message}); the user or API key "
                "needs manage_ilm and manage_index_templates on the cluster and create_index, write, read "
                f"and manage on {self.alias}-*, {self.alerts_index} and {self.labels_index}"
            ) from exc
        except ApiError as exc:
            raise IndexStoreError(f"elasticsearch {url}: {operation} failed: {exc}") from exc
        except SSLError as exc:
            raise IndexStoreError(
                f"elasticsearch {url}: TLS handshake failed during {operation} ({exc.message}); set "
                "alerting.index.es_ca_certs to the CA that signed the server certificate "
                "(es_verify_certs: false only for local tests)"
            ) from exc
        except TransportError as exc:
            raise IndexStoreError(
                f"cannot reach elasticsearch at {url} ({operation}: {exc.message}); check "
                "alerting.index.es_url and that the cluster is up"
            ) from exc

    # -- layout -----------------------------------------------------------------------------

    def ensure(self) -> None:
        """Put the ILM policy and templates, then create the write index and alerts index if missing."""
        s = self.settings
        with self._guard("ensure") as es:
            if s.es_ilm:
                es.ilm.put_lifecycle(name=layout.policy_name(s), policy=layout.ilm_policy(s))
            for name, body in layout.component_templates(s).items():
                es.cluster.put_component_template(name=name, template=body["template"])
            es.indices.put_index_template(name=self.alias, **layout.index_template(s))
            if not es.indices.exists_alias(name=self.alias):
                if es.indices.exists(index=self.alias):
                    raise IndexStoreError(
                        f"elasticsearch {s.es_url}: {self.alias} is an index, not an alias (was it written "
                        f"before ensure ran?); reindex it into {layout.first_index(self.alias)} and delete it, "
                        "or choose another alerting.index.es_index"
                    )
                self._create(es, layout.first_index(self.alias), aliases={self.alias: {"is_write_index": True}})
            for name, mappings in ((self.alerts_index, layout.alert_mappings()),
                                   (self.labels_index, layout.label_mappings())):
                self._create_small(es, name, mappings)

    def _create_small(self, es: Elasticsearch, index: str, mappings: dict[str, Any]) -> None:
        """Create a one-shard index (alerts, labels) with its explicit mappings if it is missing."""
        if not es.indices.exists(index=index):
            self._create(es, index, mappings=mappings,
                         settings={"number_of_shards": 1, "number_of_replicas": self.settings.es_replicas})

    @staticmethod
    def _create(es: Elasticsearch, index: str, **body: Any) -> None:
        try:
            es.indices.create(index=index, **body)
        except ApiError as exc:
            if exc.error != "resource_already_exists_exception":  # another worker made it first
                raise
            log.debug("index %s was created concurrently", index)

    # -- items ------------------------------------------------------------------------------

    def _locate(self, es: Elasticsearch, ids: Sequence[str]) -> dict[str, str]:
        """Which backing index holds each id already stored (so that an update lands there)."""
        where: dict[str, str] = {}
        for lo in range(0, len(ids), _PAGE):
            chunk = list(ids[lo : lo + _PAGE])
            resp = es.search(index=self.alias, query={"ids": {"values": chunk}}, size=len(chunk), source=False,
                             ignore_unavailable=True, allow_no_indices=True)
            where.update((hit["_id"], hit["_index"]) for hit in resp["hits"]["hits"])
        return where

    def upsert(self, items: Sequence[ScoredItem]) -> int:
        """Bulk-write ``items`` by id; see the module docstring for what happens to failures."""
        latest = {item.id: item for item in items}
        if not latest:
            return 0
        s = self.settings
        failed: dict[str, str] = {}
        transient: dict[str, str] = {}
        written = 0
        with self._guard("bulk upsert") as es:
            where = self._locate(es, list(latest))
            actions = (
                {"_op_type": "index", "_index": where.get(i.id, self.alias), "_id": i.id,
                 "_source": layout.item_document(i, search_text(i, s.search_chars))}
                for i in latest.values()
            )
            for ok, info in helpers.streaming_bulk(
                es, actions, chunk_size=len(latest), max_retries=s.es_max_retries,
                initial_backoff=s.es_backoff_s, max_backoff=s.es_max_backoff_s,
                raise_on_error=False, refresh=s.es_refresh,
            ):
                result = next(iter(info.values()))
                if ok:
                    written += 1
                elif result.get("status", 500) in _TRANSIENT:
                    transient[str(result.get("_id"))] = _reason(result)
                else:
                    failed[str(result.get("_id"))] = _reason(result)
        if transient:
            raise IndexStoreError(
                f"elasticsearch {s.es_url}: {len(transient)} of {len(latest)} items were not written after "
                f"{s.es_max_retries} retries (e.g. {next(iter(transient.values()))}); the cluster is "
                "overloaded or unavailable: the batch will be retried"
            )
        if failed:
            log.warning("elasticsearch refused %d of %d items: %s", len(failed), len(latest), failed)
            raise BulkItemsError(
                f"elasticsearch {s.es_url}: refused {len(failed)} of {len(latest)} items (e.g. "
                f"{next(iter(failed.values()))}); they are dead-lettered, the other {written} were written",
                failed, written,
            )
        return written

    def count(self) -> int:
        with self._guard("count") as es:
            return int(es.count(index=self.alias, ignore_unavailable=True, allow_no_indices=True)["count"])

    def get(self, id: str) -> ScoredItem | None:
        with self._guard("get") as es:
            hits = es.search(index=self.alias, query={"ids": {"values": [id]}}, size=1,
                             ignore_unavailable=True, allow_no_indices=True)["hits"]["hits"]
        return self._item(hits[0]["_source"]) if hits else None

    def _item(self, source: dict[str, Any]) -> ScoredItem:
        try:
            return layout.item_from_source(source)
        except SchemaError as exc:
            raise IndexStoreError(
                f"elasticsearch {self.alias}: a stored item no longer parses ({exc}); reindex from the bus"
            ) from exc

    def query(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        entity: str | None = None,
        topic: str | None = None,
        sentiment: Sentiment | None = None,
        text: str | None = None,
        limit: int | None = 100,
        fetched_after: datetime | None = None,
        order: QueryOrder = "newest",
    ) -> list[ScoredItem]:
        filters: list[dict[str, Any]] = []
        if start is not None or end is not None:
            filters.append({"range": {"@timestamp": self._range(start, end, "query")}})
        if fetched_after is not None:
            filters.append({"range": {"fetched_at": {"gt": _iso(fetched_after, "query fetched_after")}}})
        for field, value in (("entities", entity), ("topic", topic), ("sentiment", sentiment)):
            if value is not None:
                filters.append({"term": {field: value}})
        for term in search_terms(text or ""):
            filters.append({"wildcard": {"search": {"value": f"*{layout.wildcard_literal(term)}*"}}})
        sort = [{"fetched_at": "asc"} if order == "fetched" else {"@timestamp": "desc"}, {"id": "asc"}]
        hits = self._paged("query", self.alias, {"bool": {"filter": filters}}, sort, limit)
        return [self._item(h["_source"]) for h in hits]

    def _range(self, start: datetime | None, end: datetime | None, name: str) -> dict[str, str]:
        bounds: dict[str, str] = {}
        if start is not None:
            bounds["gte"] = _iso(start, f"{name} start")
        if end is not None:
            bounds["lt"] = _iso(end, f"{name} end")
        return bounds

    def _paged(self, operation: str, index: str, query: dict[str, Any], sort: list[dict[str, str]],
               limit: int | None) -> list[dict[str, Any]]:
        """Hits in ``sort`` order, up to ``limit`` (None: all), paging with ``search_after``."""
        hits: list[dict[str, Any]] = []
        after: list[Any] | None = None
        with self._guard(operation) as es:
            while limit is None or len(hits) < limit:
                size = _PAGE if limit is None else min(_PAGE, limit - len(hits))
                page = es.search(index=index, query=query, sort=sort, size=size, search_after=after,
                                 ignore_unavailable=True, allow_no_indices=True)["hits"]["hits"]
                hits.extend(page)
                if len(page) < size:
                    break
                after = page[-1]["sort"]
        return hits

    def bucket_counts(
        self, start: datetime, end: datetime, bucket_minutes: int, by: Scope, key: str | None = None
    ) -> list[BucketCount]:
        if bucket_minutes <= 0:
            raise IndexStoreError(f"bucket_counts: expected bucket_minutes > 0, got {bucket_minutes}")
        if by not in _BUCKET_FIELD:
            raise IndexStoreError(f"bucket_counts: expected by='entity', 'topic' or 'overall', got {by!r}")
        sources: list[dict[str, Any]] = [
            {"b": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{bucket_minutes}m"}}}
        ]
        field = _BUCKET_FIELD[by]
        query: dict[str, Any] = {"range": {"@timestamp": self._range(start, end, "bucket_counts")}}
        if field is not None and key is not None:
            # one key: a filter, not a terms source (which would bucket the other companies of its items too)
            query = {"bool": {"filter": [query, {"term": {field: key}}]}}
        elif field is not None:
            sources.append({"k": {"terms": {"field": field}}})
        fixed_key = key if field is not None else None
        out: list[BucketCount] = []
        after: dict[str, Any] | None = None
        with self._guard("bucket_counts") as es:
            while True:
                composite: dict[str, Any] = {"sources": sources, "size": _PAGE}
                if after is not None:
                    composite["after"] = after
                aggs = {"c": {"composite": composite,
                              "aggs": {"neg": {"filter": {"term": {"sentiment": "negative"}}},
                                       "pos": {"filter": {"term": {"sentiment": "positive"}}}}}}
                resp = es.search(index=self.alias, query=query, aggs=aggs, size=0,
                                 ignore_unavailable=True, allow_no_indices=True)
                result = (resp.get("aggregations") or {}).get("c", {"buckets": []})
                for b in result["buckets"]:
                    when = _EPOCH + timedelta(milliseconds=int(b["key"]["b"]))
                    out.append(BucketCount(when, b["key"].get("k", fixed_key), int(b["doc_count"]),
                                           int(b["neg"]["doc_count"]), int(b["pos"]["doc_count"])))
                after = result.get("after_key")
                if after is None or not result["buckets"]:
                    return out

    # -- alerts -----------------------------------------------------------------------------

    def _put(self, what: str, index: str, docs: dict[str, dict[str, Any]]) -> None:
        """Index small documents by id (alerts, labels); any refused one fails the call (it is retried whole)."""
        if not docs:
            return
        actions = ({"_op_type": "index", "_index": index, "_id": id, "_source": doc} for id, doc in docs.items())
        s = self.settings
        with self._guard(f"upsert {what}") as es:
            _, errors = helpers.bulk(es, actions, max_retries=s.es_max_retries, initial_backoff=s.es_backoff_s,
                                     max_backoff=s.es_max_backoff_s, raise_on_error=False, refresh=s.es_refresh)
        if errors:
            reasons = [_reason(next(iter(e.values()))) for e in errors]  # type: ignore[union-attr]
            raise IndexStoreError(f"elasticsearch {s.es_url}: {len(reasons)} {what} were not stored: {reasons[:3]}")

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        self._put("alerts", self.alerts_index, {a.id: layout.alert_document(a) for a in alerts})

    def upsert_labels(self, labels: Sequence[Label]) -> None:
        if labels:
            # `finsentinel label` may come before any worker of this version ran ensure(); the bulk write
            # would auto-create the index with dynamic mappings (item_id as text: labels() could not sort)
            with self._guard("create the labels index") as es:
                self._create_small(es, self.labels_index, layout.label_mappings())
        self._put("labels", self.labels_index, {lb.item_id: layout.label_document(lb) for lb in labels})

    def labels(self, since: datetime | None = None, limit: int | None = None,
               item_id: str | None = None) -> list[Label]:
        filters: list[dict[str, Any]] = []
        if since is not None:
            filters.append({"range": {"created_at": {"gte": _iso(since, "labels since")}}})
        if item_id is not None:
            filters.append({"term": {"item_id": item_id}})
        hits = self._paged("labels", self.labels_index, {"bool": {"filter": filters}},
                           [{"created_at": "desc"}, {"item_id": "asc"}], limit)
        try:
            return [layout.label_from_source(h["_source"]) for h in hits]
        except SchemaError as exc:
            raise IndexStoreError(f"elasticsearch {self.labels_index}: a stored label no longer parses ({exc})") from exc

    def alerts(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        scope: Scope | None = None,
        key: str | None = None,
        limit: int | None = 100,
    ) -> list[Alert]:
        filters: list[dict[str, Any]] = []
        if start is not None:
            filters.append({"range": {"end": {"gt": _iso(start, "alerts start")}}})
        if end is not None:
            filters.append({"range": {"start": {"lt": _iso(end, "alerts end")}}})
        for field, value in (("scope", scope), ("key", key)):
            if value is not None:
                filters.append({"term": {field: value}})
        hits = self._paged("alerts", self.alerts_index, {"bool": {"filter": filters}},
                           [{"start": "desc"}, {"id": "asc"}], limit)
        try:
            return [layout.alert_from_source(h["_source"]) for h in hits]
        except SchemaError as exc:
            raise IndexStoreError(f"elasticsearch {self.alerts_index}: a stored alert no longer parses ({exc}); "
                                  "re-run detection") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
