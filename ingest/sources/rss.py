"""RSS/Atom feeds over HTTP: conditional GET, character-set repair, optional full-text fetch.

The ETag and Last-Modified of the last answer go back as If-None-Match / If-Modified-Since, so an
unchanged feed costs a 304 and no parsing. Chinese feeds often declare their encoding wrongly
(GB2312 for GBK text, UTF-8 for GBK bytes, nothing at all): :func:`to_utf8` decodes with the
configured encoding, else the declared one widened to GB18030 for the GB family, else UTF-8, else
GB18030, and hands feedparser UTF-8 with a matching declaration. A UTF-16 byte order mark decides
before any of them, as XML says it does.
"""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta

from finsentinel.errors import ConfigError, SourceError
from finsentinel.settings import IngestSettings, RssSourceSettings
from ingest.normalize import resolve_tz
from ingest.parse import DOCUMENT_REASONS, Skipped, parse_rss
from ingest.sources.articles import ArticleFetcher
from ingest.sources.base import Checkpoint, Fetch
from ingest.sources.http import HttpClient

log = logging.getLogger(__name__)

_DECLARATION = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([A-Za-z0-9._-]+)([\"'])", re.I)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.I)
_GB_FAMILY = frozenset({"gb2312", "gbk", "gb18030", "euc-cn", "x-gbk", "cp936", "hz-gb-2312"})


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return None
    return "gb18030" if name.lower() in _GB_FAMILY or canonical in _GB_FAMILY else canonical


def to_utf8(data: bytes, content_type: str | None = None, override: str | None = None) -> bytes:
    """Feed bytes re-encoded as UTF-8 with an XML declaration that says so (see the module doc)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not data.startswith(codecs.BOM_UTF32_LE):
        encoded = data.decode("utf-16", "replace").encode("utf-8")  # the BOM is skipped by the codec
        return _DECLARATION.sub(rb"\g<1>utf-8\g<3>", encoded, count=1)
    declared = _DECLARATION.match(data)
    header = _CHARSET.search(content_type or "")
    candidates = [_codec(override)] if override else [
        _codec(declared.group(2).decode("ascii")) if declared else None,
        _codec(header.group(1)) if header else None,
        "utf-8",
        "gb18030",
    ]
    for codec in dict.fromkeys(c for c in candidates if c):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if codec != "utf-8" or declared:
            log.debug("feed decoded as %s", codec)
        encoded = text.encode("utf-8")
        return _DECLARATION.sub(rb"\g<1>utf-8\g<3>", encoded, count=1)
    return data.decode("utf-8", "replace").encode("utf-8")


class RssSource:
    """One RSS/Atom feed URL."""

    def __init__(self, cfg: RssSourceSettings, ingest: IngestSettings, http: HttpClient,
                 articles: ArticleFetcher | None = None) -> None:
        if cfg.encoding and _codec(cfg.encoding) is None:
            raise ConfigError(f"ingest source {cfg.name!r}: unknown encoding {cfg.encoding!r}; "
                              "expected a Python codec name such as gb18030, big5 or utf-8")
        self.name, self.cfg, self.http, self.articles = cfg.name, cfg, http, articles
        self.tz = resolve_tz(cfg.timezone)
        self.max_body = ingest.max_body_chars
        self.max_future = timedelta(seconds=ingest.max_future_s)

    def fetch(self, checkpoint: Checkpoint, now: datetime) -> Fetch:
        """GET the feed (conditionally) and parse it; a document that is not a feed fails the fetch."""
        headers = dict(self.cfg.headers)
        if checkpoint.etag:
            headers["If-None-Match"] = checkpoint.etag
        if checkpoint.last_modified:
            headers["If-Modified-Since"] = checkpoint.last_modified
        response = self.http.get(self.cfg.url, source=self.name, headers=headers, timeout_s=self.cfg.timeout_s)
        if response.status == 304:
            return Fetch([], replace(checkpoint, since=now.timestamp()), not_modified=True)
        data = to_utf8(response.content, response.headers.get("content-type"), self.cfg.encoding)
        results = parse_rss(data, self.name, self.tz, lang=self.cfg.lang, fetched_at=now,
                            max_body_chars=self.max_body, max_future=self.max_future)
        if len(results) == 1 and isinstance(results[0], Skipped) and results[0].reason in DOCUMENT_REASONS:
            start = " ".join(data[:160].decode("utf-8", "replace").split())
            raise SourceError(f"source {self.name}: {self.cfg.url} did not return a readable feed "
                              f"({results[0].reason}: {results[0].excerpt[:120]}); it starts {start!r}; "
                              "expected RSS or Atom XML")
        if self.cfg.fetch_articles and self.articles is not None:
            results = self.articles.enrich(results, self.name)
        cp = replace(checkpoint, etag=response.headers.get("etag"),
                     last_modified=response.headers.get("last-modified"), since=now.timestamp())
        return Fetch(results, cp)

    def warm(self) -> None:
        """Nothing to load ahead: connections open on the first fetch."""

    def close(self) -> None:
        """The shared HTTP client belongs to the worker."""
