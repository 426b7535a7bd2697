"""Optional full-text fetch for feeds that carry only a summary (``fetch_articles: true`` on an RSS source).

For each new item whose body is shorter than ``ingest.articles.min_body_chars``, the item's page is
fetched (through the shared polite client, at most one request per ``host_interval_s`` per host)
and its main text extracted with ``trafilatura``, a maintained boilerplate-removal library; a
longer extract replaces the summary. Items already seen are never fetched again. Off by default;
needs ``pip install trafilatura``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from finsentinel.errors import ConfigError, SourceError
from finsentinel.schema import RawItem
from finsentinel.settings import ArticleSettings
from ingest.normalize import cap_body, clean_text, entity_hints
from ingest.parse import Skipped
from ingest.sources.http import HttpClient

log = logging.getLogger(__name__)


def _trafilatura() -> Any:
    try:
        import trafilatura
    except ImportError as exc:
        raise ConfigError("fetch_articles needs the trafilatura package: pip install trafilatura "
                          "(or set fetch_articles: false)") from exc
    return trafilatura


class ArticleFetcher:
    """Replaces short bodies of new items by the main text of their pages."""

    def __init__(self, settings: ArticleSettings, http: HttpClient, max_body_chars: int,
                 seen: Callable[[RawItem], bool]) -> None:
        self.settings, self.http, self.max_body, self.seen = settings, http, max_body_chars, seen
        self.extractor = _trafilatura()

    def enrich(self, results: Sequence[RawItem | Skipped], source: str) -> list[RawItem | Skipped]:
        """``results`` with the bodies of up to ``max_per_fetch`` new, short items replaced (newest first)."""
        short = [r for r in results if isinstance(r, RawItem) and r.url and len(r.body) < self.settings.min_body_chars]
        short.sort(key=lambda r: r.published_at, reverse=True)
        chosen: dict[str, RawItem] = {}
        for item in short:
            if len(chosen) >= self.settings.max_per_fetch:
                break
            if not self.seen(item):
                chosen[item.id] = self._fetch(item, source)
        return [chosen.get(r.id, r) if isinstance(r, RawItem) else r for r in results]

    def _fetch(self, item: RawItem, source: str) -> RawItem:
        if item.url is None:
            return item
        try:
            response = self.http.get(item.url, source=source, host_interval_s=self.settings.host_interval_s)
        except SourceError as exc:
            log.info("source %s: article page of %s not fetched (%s); keeping the feed summary", source, item.id, exc)
            return item
        text = self.extractor.extract(response.content, include_comments=False, include_tables=False,
                                      favor_precision=True)
        if not text:
            return item
        body, _ = cap_body(clean_text(text, keep_lines=True), self.max_body)
        if len(body) <= len(item.body):
            return item
        return item.model_copy(update={"body": body, "entity_hints": entity_hints(f"{item.title}\n{body}")})
