"""JSON-ready views of alerts and scored items, as the demo summary and the dashboard show them,
and the times people type (the dashboard's range, ``labels export --since``) read as UTC.

A view names companies by their watchlist name beside their id, rounds what is shown, and keeps a
link only if it is an http(s) address: a feed can carry any string as a link, and a
``javascript:`` one must never reach a page as a clickable anchor.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from finsentinel.errors import ConfigError
from finsentinel.schema import Alert, ScoredItem


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) address, else None."""
    if url is None:
        return None
    scheme, sep, rest = url.strip().partition("://")
    return url.strip() if sep and scheme.lower() in ("http", "https") and rest else None


def alert_view(alert: Alert, names: Mapping[str, str]) -> dict[str, Any]:
    """An alert with the numbers behind it, its company's name and its headlines."""
    return {
        "id": alert.id,
        "scope": alert.scope,
        "entity": alert.entity,
        "entity_name": names.get(alert.entity or "", alert.entity),
        "topic": alert.topic,
        "start": alert.start.isoformat(),
        "end": alert.end.isoformat(),
        "observed": alert.observed,
        "expected": round(alert.expected, 2),
        "total": alert.total,
        "share": round(alert.share, 3),
        "baseline_share": round(alert.baseline_share, 3),
        "p_value": alert.p_value,
        "severity": alert.severity,
        "status": alert.status,
        "sources": list(alert.sources),
        "headlines": [
            {"title": h.title, "url": safe_url(h.url), "source": h.source, "published_at": h.published_at.isoformat()}
            for h in alert.headlines
        ],
    }


def item_view(item: ScoredItem, names: Mapping[str, str]) -> dict[str, Any]:
    """A scored item as a row of a table: what it says, where from, and how it was scored."""
    return {
        "id": item.id,
        "title": item.title,
        "url": safe_url(item.url),
        "source": item.source,
        "lang": item.lang,
        "published_at": item.published_at.isoformat(),
        "topic": item.topic,
        "sentiment": item.sentiment,
        "sentiment_score": round(item.sentiment_score, 3),
        "entities": [{"id": e, "name": names.get(e, e)} for e in item.entities],
        "copies": item.copies,
        "flags": list(item.flags),
    }


def parse_time(text: str | None, name: str) -> datetime | None:
    """An ISO 8601 date or time as UTC (a time without offset is taken as UTC); None for none."""
    if text is None or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{name}: expected an ISO 8601 date or time such as 2026-03-03 or 2026-03-03T09:00:00Z, got {text!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
