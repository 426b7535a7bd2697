"""Pure parsers: feed bytes in, :class:`RawItem` or :class:`Skipped` out, one per entry.

RSS/Atom is read with ``feedparser`` (tolerant of the broken XML real feeds serve); JSON API
responses are read through a small declarative :class:`JsonMapping` (where the item list is,
which field is the title, body, URL, time and id). Nothing here does I/O: the worker reads
the bytes and passes ``fetched_at`` in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import feedparser

from finsentinel.errors import ConfigError
from finsentinel.schema import RawItem, content_id
from ingest.normalize import cap_body, clean_text, detect_lang, entity_hints, html_to_text, parse_time

log = logging.getLogger(__name__)

EXCERPT_CHARS = 200
DEFAULT_MAX_BODY = 20000


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry (or a whole file) that could not become an item, with a short reason code."""

    source: str
    reason: str
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry as found, before normalisation."""

    title: object
    body: object = None
    url: object = None
    published: object = None
    native_id: object = None


@dataclass(frozen=True, slots=True)
class JsonMapping:
    """Where the fields of a JSON API response are; each field is a dotted path ("source.name").

    ``items`` is the path of the list of entries ("" for a top-level list). With ``status``
    set, a response whose value there differs from ``status_ok`` is an API error, not items.
    """

    items: str
    title: str
    time: str
    body: str | None = None
    url: str | None = None
    id: str | None = None
    status: str | None = None
    status_ok: str = "ok"
    removed_title: str | None = None

    @classmethod
    def from_dict(cls, fields: Mapping[Any, str]) -> JsonMapping:
        """Build from a settings mapping such as ``{"items": "data", "title": "text", "time": "ts"}``."""
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(fields) - allowed)
        missing = sorted({"items", "title", "time"} - set(fields))
        if unknown or missing:
            raise ConfigError(
                f"JSON field mapping: unknown keys {unknown}, missing keys {missing}; "
                f"expected keys among {sorted(allowed)} with items, title and time required"
            )
        return cls(**fields)


# NewsAPI-style responses: {"status": "ok", "articles": [{title, description, url, publishedAt, ...}]}.
NEWSAPI = JsonMapping(
    items="articles", title="title", body="description", url="url", time="publishedAt",
    status="status", removed_title="[Removed]",
)
# Social-post lists: {"data": [{"id", "text", "created_at", "permalink", "author": {...}}], "meta": {...}}.
SOCIAL = JsonMapping(items="data", title="text", url="permalink", time="created_at", id="id")

MAPPINGS: dict[str, JsonMapping] = {"newsapi": NEWSAPI, "social": SOCIAL}


def mapping_for(spec: str | Mapping[Any, str]) -> JsonMapping:
    """A built-in mapping by name, or one built from an inline field dict."""
    if isinstance(spec, str):
        try:
            return MAPPINGS[spec]
        except KeyError:
            raise ConfigError(f"unknown JSON mapping {spec!r}; expected one of {sorted(MAPPINGS)}") from None
    return JsonMapping.from_dict(spec)


def parse_rss(
    data: bytes,
    source: str,
    default_tz: tzinfo = UTC,
    *,
    lang: str = "auto",
    fetched_at: datetime | None = None,
    max_body_chars: int = DEFAULT_MAX_BODY,
) -> list[RawItem | Skipped]:
    """Items of an RSS 2.0 / Atom / RDF document; a document with no readable entries is one Skipped."""
    if not data.strip():
        return [Skipped(source, "empty", "")]
    feed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    entries = list(feed.entries)
    if feed.bozo and not entries:
        return [Skipped(source, "bad_xml", _excerpt(feed.get("bozo_exception", "") or data))]
    if not entries and not feed.get("version"):
        return [Skipped(source, "not_a_feed", _excerpt(data))]  # e.g. an HTML error page
    if feed.bozo:
        log.warning("%s: feed is not well-formed (%s); kept %d entries", source, feed.bozo_exception, len(entries))
    when = fetched_at or datetime.now(UTC)
    return [to_item(_rss_entry(e), source, default_tz, lang, when, max_body_chars) for e in entries]


def _rss_entry(entry: Any) -> Entry:
    content = entry.get("content") or []
    body = content[0].get("value") if content else entry.get("summary")
    return Entry(
        title=entry.get("title"),
        body=body,
        url=entry.get("link"),
        published=entry.get("published") or entry.get("updated"),
        native_id=entry.get("id"),
    )


def parse_json_api(
    data: bytes,
    source: str,
    mapping: JsonMapping,
    default_tz: tzinfo = UTC,
    *,
    lang: str = "auto",
    fetched_at: datetime | None = None,
    max_body_chars: int = DEFAULT_MAX_BODY,
) -> list[RawItem | Skipped]:
    """Items of one JSON API response read through ``mapping``."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [Skipped(source, "bad_json", _excerpt(str(exc)))]
    if mapping.status is not None:
        status = _get(doc, mapping.status)
        if status != mapping.status_ok:
            return [Skipped(source, "api_error", _excerpt(doc))]
    rows = _get(doc, mapping.items)
    if not isinstance(rows, list):
        return [Skipped(source, "bad_shape", f"expected a list at {mapping.items or '<root>'!r}, got {_kind(rows)}")]
    when = fetched_at or datetime.now(UTC)
    out: list[RawItem | Skipped] = []
    for row in rows:
        if not isinstance(row, dict):
            out.append(Skipped(source, "bad_entry", _excerpt(row)))
            continue
        entry = Entry(
            title=_get(row, mapping.title),
            body=_get(row, mapping.body) if mapping.body else None,
            url=_get(row, mapping.url) if mapping.url else None,
            published=_get(row, mapping.time),
            native_id=_get(row, mapping.id) if mapping.id else None,
        )
        if mapping.removed_title is not None and entry.title == mapping.removed_title:
            out.append(Skipped(source, "removed", _excerpt(row)))
            continue
        out.append(to_item(entry, source, default_tz, lang, when, max_body_chars, raw=row))
    return out


def to_item(
    entry: Entry,
    source: str,
    default_tz: tzinfo,
    lang: str,
    fetched_at: datetime,
    max_body_chars: int,
    raw: object = None,
) -> RawItem | Skipped:
    """Normalise one entry into a :class:`RawItem`, or say why it cannot be one."""
    excerpt = _excerpt(raw if raw is not None else entry)
    title = clean_text(html_to_text(entry.title)) if isinstance(entry.title, str) else ""
    if not title:
        return Skipped(source, "missing_title", excerpt)
    if entry.published in (None, ""):
        return Skipped(source, "missing_date", excerpt)
    published = parse_time(entry.published, default_tz)
    if published is None:
        return Skipped(source, "bad_date", excerpt)
    body = html_to_text(entry.body) if isinstance(entry.body, str) else ""
    body, _ = cap_body(body, max_body_chars)
    url = entry.url.strip() if isinstance(entry.url, str) and entry.url.strip() else None
    text = f"{title}\n{body}"
    return RawItem(
        id=content_id(url, title, body),
        source=source,
        url=url,
        title=title,
        body=body,
        lang=lang if lang in ("zh", "en") else detect_lang(text),
        published_at=published,
        fetched_at=fetched_at,
        entity_hints=entity_hints(text),
    )


def _get(doc: object, path: str) -> object:
    node = doc
    for part in path.split(".") if path else ():
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _excerpt(value: object) -> str:
    if isinstance(value, bytes):
        text = value[:EXCERPT_CHARS * 4].decode("utf-8", "replace")
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    return " ".join(text.split())[:EXCERPT_CHARS]
