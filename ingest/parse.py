"""Pure parsers: feed bytes or rows in, :class:`RawItem` or :class:`Skipped` out, one per entry.

RSS/Atom is read with ``feedparser`` (tolerant of the broken XML real feeds serve); JSON API
responses, JSONL lines and CSV rows are read through a declarative :class:`JsonMapping`
(:mod:`ingest.mappings`). Nothing here does I/O: sources read the bytes and pass ``fetched_at``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urljoin

import feedparser

from finsentinel.schema import RawItem, content_id
from ingest.mappings import NEWSAPI, SOCIAL, JsonMapping, fill_template, get_path, mapping_for
from ingest.normalize import (
    cap_body,
    clean_text,
    detect_lang,
    drop_surrogates,
    entity_hints,
    html_to_text,
    parse_time,
)

log = logging.getLogger(__name__)

__all__ = [
    "NEWSAPI", "SOCIAL", "DOCUMENT_REASONS", "Entry", "JsonMapping", "Options", "Skipped", "bad_entry", "mapping_for",
    "parse_json_api", "parse_json_doc", "parse_rows", "parse_rss", "to_item",
]

EXCERPT_CHARS = 200
# Earlier dates are the placeholders of broken feeds (1970-01-01, 1900-01-01, 0001-01-01), not news:
# kept, one would also make the alert detector walk every bucket from then on.
OLDEST = datetime(1990, 1, 1, tzinfo=UTC)
DEFAULT_MAX_BODY = 20000
# Reasons that concern a whole document rather than one entry: for a live source, a failed fetch.
DOCUMENT_REASONS = frozenset({"empty", "bad_xml", "not_a_feed", "bad_json", "api_error", "bad_shape"})
_LANG_NAMES = {"en": "en", "eng": "en", "english": "en", "zh": "zh", "zho": "zh", "chi": "zh", "chinese": "zh",
               "zh-cn": "zh", "zh-tw": "zh", "zh-hk": "zh", "zh-hans": "zh", "zh-hant": "zh"}
_BARE_TICKER = re.compile(r"^[A-Z]{1,6}(?:\.[A-Z]{1,2})?$")


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry (or a whole document) that could not become an item, with a short reason code."""

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
    hints: tuple[str, ...] = ()
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """How entries become items: the source's zone and language, the time of the fetch, the caps."""

    source: str
    default_tz: tzinfo = UTC
    lang: str = "auto"
    fetched_at: datetime | None = None
    max_body_chars: int = DEFAULT_MAX_BODY
    max_future: timedelta | None = None  # items dated further ahead of fetched_at are skipped


def parse_rss(
    data: bytes,
    source: str,
    default_tz: tzinfo = UTC,
    *,
    lang: str = "auto",
    fetched_at: datetime | None = None,
    max_body_chars: int = DEFAULT_MAX_BODY,
    max_future: timedelta | None = None,
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
    if feed.bozo and entries:
        log.warning("%s: feed is not well-formed (%s); kept %d entries", source, feed.bozo_exception, len(entries))
    opts = Options(source, default_tz, lang, fetched_at or datetime.now(UTC), max_body_chars, max_future)
    out: list[RawItem | Skipped] = []
    for entry in entries:
        try:
            out.append(to_item(_rss_entry(entry), opts))
        except Exception as exc:  # one entry the parser cannot handle must not sink the feed
            out.append(bad_entry(source, exc, entry))
    return out


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
    max_future: timedelta | None = None,
) -> list[RawItem | Skipped]:
    """Items of one JSON API response read through ``mapping``."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [Skipped(source, "bad_json", _excerpt(str(exc)))]
    opts = Options(source, default_tz, lang, fetched_at or datetime.now(UTC), max_body_chars, max_future)
    return parse_json_doc(doc, mapping, opts)


def parse_json_doc(doc: object, mapping: JsonMapping, opts: Options) -> list[RawItem | Skipped]:
    """Items of a decoded JSON response: status check, then one result per entry."""
    if mapping.status is not None:
        status = get_path(doc, mapping.status)
        if status is None or str(status) != mapping.status_ok:
            return [Skipped(opts.source, "api_error", _excerpt(doc))]
    rows = get_path(doc, mapping.items)
    if rows is None and mapping.allow_missing_items and isinstance(doc, dict):
        return []
    if not isinstance(rows, list):
        return [Skipped(opts.source, "bad_shape",
                        f"expected a list at {mapping.items or '<root>'!r}, got {_kind(rows)}")]
    return parse_rows(rows, mapping, opts)


def parse_rows(rows: Iterable[object], mapping: JsonMapping, opts: Options) -> list[RawItem | Skipped]:
    """One result per row (a JSON object, or a CSV row as a dict) read through ``mapping``."""
    out: list[RawItem | Skipped] = []
    for row in rows:
        if not isinstance(row, dict):
            out.append(Skipped(opts.source, "bad_entry", _excerpt(row)))
            continue
        try:
            out.append(_row_item(row, mapping, opts))
        except Exception as exc:  # one row the parser cannot handle must not sink the batch
            out.append(bad_entry(opts.source, exc, row))
    return out


def _row_item(row: dict[str, Any], mapping: JsonMapping, opts: Options) -> RawItem | Skipped:
    title = get_path(row, mapping.title)
    if mapping.removed_title is not None and title == mapping.removed_title:
        return Skipped(opts.source, "removed", _excerpt(row))
    entry = Entry(
        title=title,
        body=get_path(row, mapping.body) if mapping.body else None,
        url=_url(row, mapping),
        published=get_path(row, mapping.time),
        native_id=get_path(row, mapping.id) if mapping.id else None,
        hints=_hints(get_path(row, mapping.hints)) if mapping.hints else (),
        lang=_lang(get_path(row, mapping.lang)) if mapping.lang else None,
    )
    return to_item(entry, opts, raw=row)


def bad_entry(source: str, exc: Exception, raw: object) -> Skipped:
    """An entry whose parsing raised ``exc``: logged once at WARNING with the traceback, and skipped.

    Parsers return a Skipped with a reason code for every problem they know of; this is for the ones
    they do not (a bug, or input nobody thought of), so that one entry never fails its whole batch.
    """
    try:
        shown = _excerpt(raw)
    except Exception:  # an excerpt is a courtesy; the entry is skipped either way
        shown = f"<{type(raw).__name__}>"
    problem = " ".join(f"{type(exc).__name__}: {exc}".split())[:EXCERPT_CHARS]
    log.warning("source %s: skipped an entry the parser could not handle (%s): %s", source, problem, shown,
                exc_info=exc)
    return Skipped(source, "bad_entry", f"{problem}; entry: {shown}")


def _url(row: dict[str, Any], mapping: JsonMapping) -> str | None:
    url = get_path(row, mapping.url) if mapping.url else None
    if isinstance(url, str) and url.strip():
        if not mapping.url_base:
            return url.strip()
        try:
            return urljoin(mapping.url_base, url.strip())
        except ValueError:  # unparseable ("http://[broken"): kept as it is, as canonical_url keeps it
            return url.strip()
    if mapping.url_template:
        return fill_template(mapping.url_template, row)
    return None


def _lang(value: object) -> str | None:
    """A mapped language field as zh/en/other; None when the entry does not say."""
    if not isinstance(value, str) or not value.strip():
        return None
    return _LANG_NAMES.get(value.strip().lower(), "other")


def _hints(value: object) -> tuple[str, ...]:
    """Ticker hints from a mapped field: "AAPL", "AAPL,MSFT" or a list; bare US tickers become cashtags."""
    values: Sequence[object] = value if isinstance(value, list) else re.split(r"[,\s]+", value) \
        if isinstance(value, str) else ()
    out = []
    for raw in values:
        text = drop_surrogates(str(raw)).strip() if isinstance(raw, str | int) else ""
        if text:
            out.append("$" + text if _BARE_TICKER.match(text) else text)
    return tuple(dict.fromkeys(out))


def to_item(entry: Entry, opts: Options, raw: object = None) -> RawItem | Skipped:
    """Normalise one entry into a :class:`RawItem`, or say why it cannot be one."""
    source = opts.source
    title = _clean_title(entry.title) if isinstance(entry.title, str) else ""
    if not title:
        return Skipped(source, "missing_title", _excerpt(raw if raw is not None else entry))
    if entry.published in (None, ""):
        return Skipped(source, "missing_date", _excerpt(raw if raw is not None else entry))
    published = parse_time(entry.published, opts.default_tz)
    if published is None:
        return Skipped(source, "bad_date", _excerpt(raw if raw is not None else entry))
    if published < OLDEST:
        return Skipped(source, "placeholder_date", f"{published.isoformat()}: {title[:EXCERPT_CHARS]}")
    fetched_at = opts.fetched_at or datetime.now(UTC)
    if opts.max_future is not None and published > fetched_at + opts.max_future:
        return Skipped(source, "future_date", f"{published.isoformat()}: {title[:EXCERPT_CHARS]}")
    body = html_to_text(entry.body) if isinstance(entry.body, str) else ""
    body, _ = cap_body(body, opts.max_body_chars)
    url = drop_surrogates(entry.url).strip() if isinstance(entry.url, str) else None
    url = url or None
    text = f"{title}\n{body}"
    if opts.lang in ("zh", "en"):
        lang = opts.lang
    else:
        lang = entry.lang or detect_lang(text)
    hints = entity_hints(text)
    return RawItem(
        id=content_id(url, title, body),
        source=source,
        url=url,
        title=title,
        body=body,
        lang=lang,
        published_at=published,
        fetched_at=fetched_at,
        entity_hints=tuple(dict.fromkeys((*hints, *entry.hints))) if entry.hints else hints,
    )


def _clean_title(title: str) -> str:
    """A title as one clean line (markup-free titles, most of them, skip the HTML pass: same result)."""
    return clean_text(html_to_text(title)) if "<" in title or "&" in title else clean_text(title)


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
