"""Settings sections of the ingest workers: sources, HTTP politeness, dedup and article fetch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, SecretStr, Tag

from finsentinel.settings.core import _Section

_TZ_PATTERN = r"^(?:(?:UTC|GMT)?[+-]\d{1,2}(?::?\d{2})?|[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2})$"
MappingKey = Literal[
    "items", "title", "body", "url", "url_base", "url_template", "time", "id", "status", "status_ok",
    "removed_title", "hints", "lang", "cursor",
]
MappingName = Literal["newsapi", "social", "replay", "gdelt", "finnhub", "reddit", "stocktwits"]
MappingSpec = MappingName | dict[MappingKey, str]


class _SourceSettings(_Section):
    """What every source has: a unique name (it keys checkpoints), language and time-zone handling.

    ``lang``: ``zh``/``en`` trusts the source's language, ``auto`` detects it per item.
    ``timezone``: the zone of item times that carry no offset, an IANA name (``Asia/Shanghai``)
    or a fixed offset (``+08:00``). ``interval_s``: seconds between fetches (default
    ``ingest.interval_s``); ``jitter_s``: random delay added to each run (default ``ingest.jitter_s``).
    """

    name: str = Field(min_length=1, pattern=r"^[^\s/]+$")
    lang: Literal["zh", "en", "auto"] = "auto"
    timezone: str = Field(default="UTC", pattern=_TZ_PATTERN)
    interval_s: float | None = Field(default=None, gt=0)
    jitter_s: float | None = Field(default=None, ge=0)
    enabled: bool = True


class FileSourceSettings(_SourceSettings):
    """A file or directory replayed into the bus.

    ``format``: ``rss`` (RSS/Atom XML files), ``json`` (JSON API responses), ``jsonl`` (one item
    per line) or ``csv`` (a header row, one item per row). ``mapping`` (json/jsonl/csv): a built-in
    field mapping (``newsapi``, ``social``, ``replay`` = fields named title, body, url,
    published_at, id; or one of the API presets) or an inline one, e.g. ``{items: data.posts,
    title: text, time: created_at, url: link}``; default ``newsapi`` for json, ``replay`` for
    jsonl/csv. ``speed`` (jsonl/csv): 0 replays as fast as possible, 1 in real time (item times
    apart as published), N at N times real time. ``parse_workers`` (jsonl/csv at speed 0): parse
    in that many extra processes (0: in the worker process itself).
    """

    type: Literal["file"] = "file"
    path: Path
    format: Literal["rss", "json", "jsonl", "csv"] = "rss"
    mapping: MappingSpec | None = None
    speed: float = Field(default=0.0, ge=0)
    parse_workers: int = Field(default=0, ge=0, le=32)


class _HttpSourceSettings(_SourceSettings):
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    headers: dict[str, str] = {}
    timeout_s: float = Field(default=20.0, gt=0)


class RssSourceSettings(_HttpSourceSettings):
    """An RSS/Atom feed fetched over HTTP with conditional GET (ETag / Last-Modified).

    ``encoding``: the feed's real character set when it declares a wrong one or none (e.g.
    ``gb18030`` for GBK feeds); default: as declared, then UTF-8, then GB18030.
    ``fetch_articles``: fetch each new item's page and extract its main text when the feed carries
    only a short summary (needs ``trafilatura``; see ``ingest.articles``).
    """

    type: Literal["rss"]
    url: str = Field(pattern=r"^https?://\S+$")
    encoding: str | None = None
    fetch_articles: bool = False


class ApiSourceSettings(_HttpSourceSettings):
    """A JSON HTTP API read through a field mapping; ``preset`` fills URL, parameters and mapping.

    ``params`` values may use ``{since:%Y-%m-%d}`` (last successful fetch, or now minus
    ``lookback_s`` at first), ``{now:...}``, ``{cursor}`` and ``{api_key}``. The key comes from
    ``api_key`` or the environment variable named by ``api_key_env``; presets put it where their API
    expects it. ``cursor_param``: request parameter that carries the cursor the mapping's
    ``cursor`` path read from the last response.
    """

    type: Literal["api"]
    preset: Literal["gdelt", "newsapi", "finnhub", "reddit", "stocktwits"] | None = None
    params: dict[str, str | int | float] = {}
    mapping: MappingSpec | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    lookback_s: float = Field(default=86400.0, gt=0)
    cursor_param: str | None = None


def _source_type(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "file"))
    return str(getattr(value, "type", "file"))


SourceSettings = Annotated[
    Annotated[FileSourceSettings, Tag("file")] | Annotated[RssSourceSettings, Tag("rss")]
    | Annotated[ApiSourceSettings, Tag("api")],
    Discriminator(_source_type),
]


class HttpSettings(_Section):
    """Politeness and failure handling of HTTP sources (shared by all of them)."""

    user_agent: str = "FinSentinel/0.1 (news-risk monitor; +https://github.com/finsentinel/finsentinel)"
    host_interval_s: float = Field(default=1.0, ge=0, description="least seconds between requests to one host")
    max_retries: int = Field(default=3, ge=0, description="retries of a request after 429, 5xx or a network error")
    backoff_s: float = Field(default=2.0, ge=0, description="first retry delay; doubles each retry")
    max_backoff_s: float = Field(
        default=120.0, ge=0, description="longest wait for one retry; a longer Retry-After fails the fetch"
    )
    max_bytes: int = Field(default=10_000_000, ge=1024, description="larger responses are cut off and fail")
    breaker_failures: int = Field(default=5, ge=1, description="failed fetches in a row that pause a source")
    breaker_pause_s: float = Field(default=600.0, gt=0, description="first pause; doubles at each re-opening")
    breaker_max_pause_s: float = Field(default=21600.0, gt=0)
    suspicious_after: int = Field(
        default=5, ge=1, description="fetches in a row with zero items, after having had items, that flag a source"
    )


class NearDupSettings(_Section):
    """Near-duplicate (syndicated copy) detection; see ``ingest.neardup``."""

    enabled: bool = True
    threshold: float = Field(default=0.6, gt=0, le=1, description="estimated Jaccard similarity of a copy")
    strong_threshold: float = Field(default=0.85, gt=0, le=1, description="a copy whatever its headline")
    title_containment: float = Field(default=0.9, gt=0, le=1)
    num_perm: int = Field(default=48, ge=8, description="MinHash permutations; a multiple of bands")
    bands: int = Field(default=16, ge=1)
    horizon_h: float = Field(default=48.0, gt=0, description="copies are matched within this many hours")
    min_shingles: int = Field(default=24, ge=1, description="shorter items are left to exact dedup")


class ArticleSettings(_Section):
    """Full-text fetch of article pages for feeds with ``fetch_articles`` (off unless a feed asks)."""

    min_body_chars: int = Field(default=400, ge=0, description="fetch when the feed's body is shorter")
    host_interval_s: float = Field(default=5.0, ge=0, description="least seconds between page fetches per host")
    max_per_fetch: int = Field(default=20, ge=1, description="pages fetched per source run, newest first")


class IngestSettings(_Section):
    """Sources, the ingest worker's state (dedup memory, checkpoints) and its schedule."""

    sources: Sequence[SourceSettings] = []
    state_path: Path = Path("var/ingest.sqlite3")
    interval_s: float = Field(default=300.0, gt=0)
    jitter_s: float = Field(default=10.0, ge=0)
    max_body_chars: int = Field(default=20000, ge=100)
    max_future_s: float = Field(default=86400.0, ge=0, description="items dated further ahead are skipped")
    http: HttpSettings = HttpSettings()
    near_dup: NearDupSettings = NearDupSettings()
    articles: ArticleSettings = ArticleSettings()
