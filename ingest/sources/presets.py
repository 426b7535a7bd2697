"""Ready-made settings of the JSON APIs FinSentinel knows: URL, parameters, field mapping, key placement.

A preset only fills defaults: anything set on the source in the settings file wins. ``{name}`` in a
URL is filled from the parameter of that name (and the parameter is not sent as a query
parameter); ``required`` parameters must be set by the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Preset:
    """Defaults of one API."""

    url: str
    mapping: str
    params: Mapping[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    key_header: str | None = None
    key_param: str | None = None
    key_required: bool = False
    cursor_param: str | None = None
    docs: str = ""


PRESETS: Mapping[str, Preset] = MappingProxyType({
    # GDELT DOC 2.0: multilingual news search, no key; answers {} when nothing matches.
    "gdelt": Preset(
        url="https://api.gdeltproject.org/api/v2/doc/doc", mapping="gdelt",
        params={"mode": "ArtList", "format": "json", "maxrecords": "250", "sort": "DateDesc",
                "startdatetime": "{since:%Y%m%d%H%M%S}"},
        required=("query",), docs="https://blog.gdeltproject.org/gdelt-doc-2-0-api-debuts/",
    ),
    # NewsAPI /v2/everything: key in the X-Api-Key header.
    "newsapi": Preset(
        url="https://newsapi.org/v2/everything", mapping="newsapi",
        params={"sortBy": "publishedAt", "pageSize": "100", "from": "{since:%Y-%m-%dT%H:%M:%S}"},
        required=("q",), key_header="X-Api-Key", key_required=True, docs="https://newsapi.org/docs/endpoints/everything",
    ),
    # Finnhub company news: key in the X-Finnhub-Token header; dates are days.
    "finnhub": Preset(
        url="https://finnhub.io/api/v1/company-news", mapping="finnhub",
        params={"from": "{since:%Y-%m-%d}", "to": "{now:%Y-%m-%d}"},
        required=("symbol",), key_header="X-Finnhub-Token", key_required=True,
        docs="https://finnhub.io/docs/api/company-news",
    ),
    # Reddit listing JSON of a subreddit's newest posts; no key, a descriptive User-Agent is required.
    "reddit": Preset(
        url="https://www.reddit.com/r/{subreddit}/new.json", mapping="reddit",
        params={"limit": "100", "raw_json": "1"}, required=("subreddit",),
        docs="https://www.reddit.com/dev/api/#GET_new",
    ),
    # StockTwits symbol stream; ``since`` asks for messages newer than the last one seen.
    "stocktwits": Preset(
        url="https://api.stocktwits.com/api/2/streams/symbol/{symbol}.json", mapping="stocktwits",
        required=("symbol",), key_param="access_token", cursor_param="since",
        docs="https://api.stocktwits.com/developers/docs/api#streams-symbol-docs",
    ),
})
