"""Serialisers of the demo feeds: RSS 2.0 XML, NewsAPI-style JSON pages, social-post JSON.

Each feed writes its times the way such feeds do (RFC 822 in GMT or with a local offset,
naive local times, ISO 8601 with ``Z`` or ``+08:00``, Unix epoch seconds), so the parsers and
the time-zone settings are exercised. Output is byte-for-byte deterministic.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # noqa: S405 - used to write XML, never to parse it
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from ingest.normalize import resolve_tz

PAGE_SIZE = 30


@dataclass(frozen=True)
class FeedSpec:
    """One bundled feed: where it lies under ``samples/``, how ingest reads it, how it is written."""

    name: str
    path: str
    format: str  # rss | json
    lang: str  # the ingest setting: zh | en | auto
    timezone: str
    mapping: str
    content_lang: str
    role: str  # rss1 | rss2 | api | social
    date_style: str  # rfc822_gmt | rfc822_local | naive_local | iso_z | iso_local | epoch
    title: str
    site: str


@dataclass(frozen=True)
class Placed:
    """A story as it appears in one feed."""

    title: str
    body: str
    at: datetime
    url: str
    native_id: str
    author: str
    outlet: str
    malformed: str = ""


def write_feed(out_dir: Path, feed: FeedSpec, entries: list[Placed]) -> int:
    """Write ``entries`` (newest first, as feeds list them) in ``feed``'s format; return how many."""
    entries = sorted(entries, key=lambda e: (e.at, e.native_id), reverse=True)
    target = out_dir / feed.path
    if feed.format == "rss":
        target.write_bytes(_rss(feed, entries))
    elif feed.role == "api":
        target.mkdir(parents=True, exist_ok=True)
        pages = [entries[i:i + PAGE_SIZE] for i in range(0, len(entries), PAGE_SIZE)]
        for n, page in enumerate(pages, start=1):
            (target / f"page-{n}.json").write_bytes(_dump(_newsapi(feed, page, len(entries))))
    else:
        target.write_bytes(_dump(_social(feed, entries)))
    return len(entries)


def _when(feed: FeedSpec, at: datetime) -> str | int:
    local = at.astimezone(resolve_tz(feed.timezone))
    style = feed.date_style
    if style == "rfc822_gmt":
        return format_datetime(at, usegmt=True)
    if style == "rfc822_local":
        return format_datetime(local)
    if style == "naive_local":
        return f"{local:%Y-%m-%d %H:%M:%S}"
    if style == "iso_z":
        return f"{at:%Y-%m-%dT%H:%M:%S}Z"
    if style == "iso_local":
        return local.isoformat()
    return int(at.timestamp())


def _html(body: str, style: str) -> str:
    paragraphs = [p for p in body.split("\n") if p]
    if style == "br":
        return "<br/>".join(paragraphs)
    return "".join(f"<p>{p}</p>" for p in paragraphs)


def _rss(feed: FeedSpec, entries: list[Placed]) -> bytes:
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    for tag, text in (("title", feed.title), ("link", feed.site + "/"),
                      ("description", f"{feed.title} ({feed.site})"),
                      ("language", "en-us" if feed.content_lang == "en" else "zh-cn"), ("ttl", "5")):
        ET.SubElement(channel, tag).text = text
    if entries:
        ET.SubElement(channel, "lastBuildDate").text = str(_when(feed, entries[0].at))
    for e in entries:
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = e.title
        ET.SubElement(item, "link").text = e.url
        ET.SubElement(item, "description").text = _html(e.body, "br" if feed.role == "rss2" else "p")
        date = "2026-03-03 25:61:00" if e.malformed == "bad_date" else str(_when(feed, e.at))
        ET.SubElement(item, "pubDate").text = date
        permalink = feed.role == "rss1"
        ET.SubElement(item, "guid", {"isPermaLink": "true" if permalink else "false"}).text = (
            e.url if permalink else e.native_id
        )
        if e.author:
            ET.SubElement(item, "category").text = e.author
    ET.indent(rss, space="  ")
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True) + b"\n"


def _newsapi(feed: FeedSpec, entries: list[Placed], total: int) -> dict[str, Any]:
    articles = []
    for e in entries:
        content = e.body.replace("\n", " ")
        articles.append({
            "source": {"id": None, "name": e.outlet},
            "author": e.author or None,
            "title": None if e.malformed == "missing_title" else e.title,
            "description": e.body,
            "url": e.url,
            "urlToImage": None,
            "publishedAt": _when(feed, e.at),
            "content": content[:80] + f"… [+{max(0, len(content) - 80) + 900} chars]",
        })
    return {"status": "ok", "totalResults": total, "articles": articles}


def _social(feed: FeedSpec, entries: list[Placed]) -> dict[str, Any]:
    posts = []
    for e in entries:
        post: dict[str, Any] = {"id": e.native_id, "text": e.title}
        if e.malformed != "missing_date":
            post["created_at"] = _when(feed, e.at)
        post.update(permalink=e.url, author={"handle": e.author},
                    metrics={"likes": int(e.native_id[-3:]) % 97, "reposts": int(e.native_id[-2:]) % 13})
        posts.append(post)
    meta = {"result_count": len(posts), "newest_id": posts[0]["id"] if posts else None,
            "oldest_id": posts[-1]["id"] if posts else None}
    return {"data": posts, "meta": meta}


def _dump(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
