"""The Elasticsearch layout: ILM policy, component and index templates, mappings, documents.

Pure functions returning request bodies, so that they can be checked without a cluster.

* Items live in backing indices ``<alias>-000001``, ``-000002``, ... behind the write alias
  ``es_index``; an ILM policy rolls the write index over by age or primary shard size and,
  when ``es_retention_days`` is set, deletes old indices.
* A composable index template (``index_patterns: <alias>-*``) is composed of two component
  templates: ``<alias>-settings`` (shards, replicas, analyzers, lifecycle) and
  ``<alias>-mappings`` (explicit mappings; ``dynamic: false``, so a field added to the schema
  later is kept in ``_source`` but not indexed, instead of failing every write).
* ``@timestamp`` (the item's publication time) is ``date_nanos``: items keep their microseconds.
* ``topic``, ``sentiment``, ``entities``, ``source``, ``lang`` are keywords (filters, aggregations).
* ``title`` and ``body`` are text with the English analyzer, and a ``.zh`` sub-field with a
  CJK-capable analyzer: the built-in ``cjk`` (overlapping bigrams) or, when the cluster has the
  plugin, ``smartcn`` or IK (``ik_max_word`` to index, ``ik_smart`` to search): for dashboards
  and relevance-ranked search in Kibana.
* ``search`` is a ``wildcard`` field holding the normalised title and body start (as the SQLite
  backend indexes them): it answers the exact substring semantics of :meth:`Index.query`'s
  ``text`` filter in both languages (an analyzer splits words, and ``recall`` would not find
  ``recalls``, nor ``暴雷`` inside an unsegmented phrase).
"""

from __future__ import annotations

import json
from typing import Any

from finsentinel.schema import Alert, Label, ScoredItem
from finsentinel.settings import IndexSettings

TEMPLATE_PRIORITY = 200  # above the built-in templates (100), so ours wins for <alias>-*

_CJK: dict[str, tuple[str, str]] = {  # setting -> (index analyzer, search analyzer)
    "cjk": ("cjk", "cjk"),
    "smartcn": ("smartcn", "smartcn"),
    "ik": ("ik_max_word", "ik_smart"),
}
_KEYWORDS = ("id", "source", "lang", "topic", "sentiment", "entities", "entity_hints", "model_version", "flags")


def first_index(alias: str) -> str:
    """The first backing index behind ``alias``; rollover numbers the next ones."""
    return f"{alias}-000001"


def policy_name(settings: IndexSettings) -> str:
    return f"{settings.es_index}-policy"


def ilm_policy(settings: IndexSettings) -> dict[str, Any]:
    """Roll over the write index by age or size; delete old indices if a retention is set."""
    phases: dict[str, Any] = {
        "hot": {"actions": {"rollover": {
            "max_age": settings.es_rollover_max_age,
            "max_primary_shard_size": settings.es_rollover_max_primary_shard_size,
        }}},
    }
    if settings.es_retention_days is not None:
        phases["delete"] = {"min_age": f"{settings.es_retention_days}d", "actions": {"delete": {}}}
    return {"phases": phases}


def _text(cjk: str) -> dict[str, Any]:
    index_analyzer, search_analyzer = _CJK[cjk]
    return {
        "type": "text", "analyzer": "english",
        "fields": {"zh": {"type": "text", "analyzer": index_analyzer, "search_analyzer": search_analyzer}},
    }


def item_mappings(settings: IndexSettings) -> dict[str, Any]:
    """Explicit mappings of the item indices."""
    properties: dict[str, Any] = {name: {"type": "keyword"} for name in _KEYWORDS}
    properties.update({
        "@timestamp": {"type": "date_nanos"},
        "published_at": {"type": "date_nanos"},
        "fetched_at": {"type": "date_nanos"},
        "schema_version": {"type": "short"},
        "url": {"type": "keyword", "index": False},
        "title": _text(settings.es_cjk_analyzer),
        "body": _text(settings.es_cjk_analyzer),
        "search": {"type": "wildcard"},
        "copies": {"type": "integer"},
        "sentiment_score": {"type": "float"},
        "topic_scores": {"type": "object", "enabled": False},
        "sentiment_scores": {"type": "object", "enabled": False},
    })
    return {"dynamic": False, "properties": properties}


def item_settings(settings: IndexSettings) -> dict[str, Any]:
    """Index settings of the item indices (lifecycle included when ILM is on)."""
    body: dict[str, Any] = {
        "number_of_shards": settings.es_shards,
        "number_of_replicas": settings.es_replicas,
    }
    if settings.es_ilm:
        body["index.lifecycle.name"] = policy_name(settings)
        body["index.lifecycle.rollover_alias"] = settings.es_index
    return body


def component_templates(settings: IndexSettings) -> dict[str, dict[str, Any]]:
    """Name -> body of the component templates the index template is composed of."""
    alias = settings.es_index
    return {
        f"{alias}-settings": {"template": {"settings": item_settings(settings)}},
        f"{alias}-mappings": {"template": {"mappings": item_mappings(settings)}},
    }


def index_template(settings: IndexSettings) -> dict[str, Any]:
    """The composable index template for ``<alias>-*``."""
    return {
        "index_patterns": [f"{settings.es_index}-*"],
        "composed_of": list(component_templates(settings)),
        "priority": TEMPLATE_PRIORITY,
        "meta": {"managed_by": "finsentinel", "description": "scored news items"},
    }


def alert_mappings() -> dict[str, Any]:
    """Explicit mappings of the alerts index (small: one document per episode, no rollover)."""
    keywords = ("id", "scope", "key", "entity", "topic", "severity", "status", "sources")
    properties: dict[str, Any] = {name: {"type": "keyword"} for name in keywords}
    properties.update({
        "start": {"type": "date_nanos"}, "end": {"type": "date_nanos"}, "created_at": {"type": "date_nanos"},
        "bucket_minutes": {"type": "integer"}, "observed": {"type": "integer"}, "total": {"type": "integer"},
        "expected": {"type": "float"}, "share": {"type": "float"}, "baseline_share": {"type": "float"},
        "p_value": {"type": "double"}, "schema_version": {"type": "short"},
        "headlines": {"type": "object", "enabled": False},
    })
    return {"dynamic": False, "properties": properties}


def label_mappings() -> dict[str, Any]:
    """Explicit mappings of the labels index (one document per labelled item, no rollover)."""
    keywords = ("item_id", "lang", "sentiment", "topic", "by", "predicted_sentiment", "predicted_topic")
    properties: dict[str, Any] = {name: {"type": "keyword"} for name in keywords}
    properties.update({"created_at": {"type": "date_nanos"}, "schema_version": {"type": "short"},
                       "text": {"type": "text", "index": False}, "note": {"type": "text", "index": False}})
    return {"dynamic": False, "properties": properties}


def item_document(item: ScoredItem, search: str) -> dict[str, Any]:
    """The ``_source`` of an item: every field of the record, plus ``@timestamp`` and ``search``."""
    doc = item.model_dump(mode="json")
    doc["@timestamp"] = doc["published_at"]
    doc["search"] = search
    return doc


def item_from_source(source: dict[str, Any]) -> ScoredItem:
    """The item back from its ``_source`` (raises SchemaError if it no longer parses)."""
    fields = {k: v for k, v in source.items() if k not in ("@timestamp", "search")}
    return ScoredItem.from_json(_json(fields))


def alert_document(alert: Alert) -> dict[str, Any]:
    """The ``_source`` of an alert, with ``key`` (the company or topic it is about) for filtering."""
    doc = alert.model_dump(mode="json")
    doc["key"] = alert.entity if alert.scope == "entity" else alert.topic
    return doc


def alert_from_source(source: dict[str, Any]) -> Alert:
    """The alert back from its ``_source``."""
    return Alert.from_json(_json({k: v for k, v in source.items() if k != "key"}))


def label_document(label: Label) -> dict[str, Any]:
    """The ``_source`` of a label: every field of the record."""
    return label.model_dump(mode="json")


def label_from_source(source: dict[str, Any]) -> Label:
    """The label back from its ``_source``."""
    return Label.from_json(_json(source))


def _json(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False)


def wildcard_literal(term: str) -> str:
    """``term`` with the wildcard query's special characters (``*``, ``?``, ``\\``) escaped."""
    return term.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
