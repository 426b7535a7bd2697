"""Ingest sources: one module per type behind the :class:`~ingest.sources.base.Source` Protocol.

``file`` (:mod:`.files`), ``rss`` (:mod:`.rss`) and ``api`` (:mod:`.api`, presets in
:mod:`.presets`); :mod:`.http` is the polite client the HTTP sources share and :mod:`.articles`
the optional full-text fetch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from finsentinel.errors import ConfigError
from finsentinel.schema import RawItem
from finsentinel.settings import ApiSourceSettings, FileSourceSettings, IngestSettings, RssSourceSettings
from ingest.sources.base import Checkpoint, Fetch, Source
from ingest.sources.http import HttpClient

__all__ = ["Checkpoint", "Fetch", "Source", "build_sources"]


def build_sources(settings: IngestSettings, http: HttpClient, seen: Callable[[RawItem], bool]) -> list[Source]:
    """One source per enabled ``ingest.sources`` entry; :class:`ConfigError` names the first bad one.

    No I/O happens here: sources connect and read when fetched.
    """
    names = Counter(s.name for s in settings.sources)
    repeated = sorted(n for n, c in names.items() if c > 1)
    if repeated:
        raise ConfigError(f"ingest.sources: names must be unique (they key checkpoints); repeated: {repeated}")
    out: list[Source] = []
    for cfg in settings.sources:
        try:
            source = _build(cfg, settings, http, seen)
        except ConfigError as exc:
            message = str(exc)
            raise ConfigError(message if repr(cfg.name) in message else f"ingest source {cfg.name!r}: {exc}") from exc
        if cfg.enabled:
            out.append(source)
    return out


def _build(cfg: FileSourceSettings | RssSourceSettings | ApiSourceSettings, settings: IngestSettings,
           http: HttpClient, seen: Callable[[RawItem], bool]) -> Source:
    if isinstance(cfg, FileSourceSettings):
        from ingest.sources.files import FileSource

        return FileSource(cfg, settings)
    if isinstance(cfg, RssSourceSettings):
        from ingest.sources.rss import RssSource

        articles = None
        if cfg.fetch_articles:
            from ingest.sources.articles import ArticleFetcher

            articles = ArticleFetcher(settings.articles, http, settings.max_body_chars, seen)
        return RssSource(cfg, settings, http, articles)
    from ingest.sources.api import ApiSource

    return ApiSource(cfg, settings, http)
