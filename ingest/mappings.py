"""Declarative field mappings of JSON (and JSONL/CSV) sources, and the built-in ones.

A mapping says, as dotted paths, where a response keeps its list of entries and where each entry
keeps its title, body, URL, time and id. Paths may contain ``*`` to collect a field from every
element of a list (``symbols.*.symbol``). A user adds a news API in the settings file by writing
one; the built-in mappings cover the APIs FinSentinel ships presets for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from finsentinel.errors import ConfigError

_SLOT = re.compile(r"\{([A-Za-z0-9_.*]+)\}")
REQUIRED = ("items", "title", "time")


@dataclass(frozen=True, slots=True)
class JsonMapping:
    """Where the fields of a JSON response are; each value is a dotted path ("source.name").

    ``items`` is the path of the list of entries ("" for a top-level list, or for JSONL/CSV rows).
    With ``status`` set, a response whose value there differs from ``status_ok`` is an API error.
    ``url_base`` is joined to relative URLs; ``url_template`` builds a URL from entry fields
    (``https://stocktwits.com/{user.username}/message/{id}``) when there is none. ``hints``: ticker
    symbols of the entry (a string or a list). ``lang``: the entry's language ("English", "zh", ...).
    ``cursor``: where the response keeps the cursor for the next request. ``removed_title``: a
    title that marks a deleted entry. ``allow_missing_items``: a response without the items path
    has no entries (rather than a changed format).
    """

    items: str
    title: str
    time: str
    body: str | None = None
    url: str | None = None
    url_base: str | None = None
    url_template: str | None = None
    id: str | None = None
    status: str | None = None
    status_ok: str = "ok"
    removed_title: str | None = None
    hints: str | None = None
    lang: str | None = None
    cursor: str | None = None
    allow_missing_items: bool = False

    @classmethod
    def from_dict(cls, spec: Mapping[Any, str]) -> JsonMapping:
        """Build from a settings mapping such as ``{"items": "data", "title": "text", "time": "ts"}``."""
        allowed = {f.name for f in fields(cls)} - {"allow_missing_items"}
        unknown = sorted(set(spec) - allowed)
        missing = sorted(set(REQUIRED) - set(spec))
        if unknown or missing:
            raise ConfigError(
                f"JSON field mapping: unknown keys {unknown}, missing keys {missing}; "
                f"expected keys among {sorted(allowed)} with items, title and time required"
            )
        values: dict[str, Any] = {str(k): str(v) for k, v in spec.items()}
        return cls(**values)


def get_path(doc: object, path: str) -> object:
    """The value at dotted ``path`` in ``doc`` (None where missing); ``*`` maps over a list."""
    node = doc
    parts = path.split(".") if path else []
    for i, part in enumerate(parts):
        if part == "*":
            if not isinstance(node, list):
                return None
            rest = ".".join(parts[i + 1:])
            return [get_path(element, rest) for element in node]
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def fill_template(template: str, row: object) -> str | None:
    """``template`` with each ``{path}`` replaced by that field of ``row``; None if a field is missing."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found = get_path(row, match.group(1))
        if found is None or found == "" or isinstance(found, dict | list):
            missing = True
            return ""
        return str(found)

    filled = _SLOT.sub(value, template)
    return None if missing else filled


# NewsAPI /v2/everything and /v2/top-headlines: {"status": "ok", "articles": [{title, description, url, ...}]}.
NEWSAPI = JsonMapping(
    items="articles", title="title", body="description", url="url", time="publishedAt",
    status="status", removed_title="[Removed]",
)
# Social-post lists: {"data": [{"id", "text", "created_at", "permalink", "author": {...}}], "meta": {...}}.
SOCIAL = JsonMapping(items="data", title="text", url="permalink", time="created_at", id="id")
# JSONL/CSV replay rows named like RawItem's fields.
REPLAY = JsonMapping(items="", title="title", body="body", url="url", time="published_at", id="id", lang="lang")
# GDELT DOC 2.0 API, mode=ArtList&format=json: {"articles": [{url, title, seendate, domain, language, ...}]};
# a query without matches answers {}.
GDELT = JsonMapping(items="articles", title="title", url="url", time="seendate", lang="language",
                    allow_missing_items=True)
# Finnhub /company-news: a top-level list of {category, datetime (epoch s), headline, id, related, source,
# summary, url}.
FINNHUB = JsonMapping(items="", title="headline", body="summary", url="url", time="datetime", id="id",
                      hints="related")
# Reddit listing JSON (/r/<sub>/new.json): {"kind": "Listing", "data": {"after", "children": [{"kind": "t3",
# "data": {name, title, selftext, permalink, created_utc, ...}}]}}.
REDDIT = JsonMapping(items="data.children", title="data.title", body="data.selftext", url="data.permalink",
                     url_base="https://www.reddit.com", time="data.created_utc", id="data.name")
# StockTwits /streams/symbol/<SYMBOL>.json: {"response": {"status": 200}, "cursor": {"since", "max", ...},
# "messages": [{id, body, created_at, user: {username}, symbols: [{symbol}]}]}.
STOCKTWITS = JsonMapping(items="messages", title="body", time="created_at", id="id", status="response.status",
                         status_ok="200", url_template="https://stocktwits.com/{user.username}/message/{id}",
                         hints="symbols.*.symbol", cursor="cursor.since")

MAPPINGS: dict[str, JsonMapping] = {
    "newsapi": NEWSAPI, "social": SOCIAL, "replay": REPLAY, "gdelt": GDELT, "finnhub": FINNHUB, "reddit": REDDIT,
    "stocktwits": STOCKTWITS,
}


def mapping_for(spec: str | Mapping[Any, str]) -> JsonMapping:
    """A built-in mapping by name, or one built from an inline field dict."""
    if isinstance(spec, str):
        try:
            return MAPPINGS[spec]
        except KeyError:
            raise ConfigError(f"unknown JSON mapping {spec!r}; expected one of {sorted(MAPPINGS)}") from None
    return JsonMapping.from_dict(spec)
