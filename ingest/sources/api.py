"""JSON HTTP APIs read through a declarative field mapping, with presets for known APIs.

Request parameters may use ``{since:<strftime>}`` (the last successful fetch, less
:data:`OVERLAP_S` so that nothing published at the boundary is missed; ``lookback_s`` before now
at the first fetch), ``{now:<strftime>}``, ``{cursor}`` and ``{api_key}``; a URL may use
``{param}`` for any parameter. A response the mapping cannot read (not JSON, an API error
status, no list where the items should be) fails the fetch, so the circuit breaker and the status
command see it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from finsentinel.errors import ConfigError, SourceError
from finsentinel.settings import ApiSourceSettings, IngestSettings
from ingest.mappings import JsonMapping, get_path, mapping_for
from ingest.normalize import resolve_tz
from ingest.parse import DOCUMENT_REASONS, Options, Skipped, parse_json_doc
from ingest.sources.base import Checkpoint, Fetch
from ingest.sources.http import HttpClient
from ingest.sources.presets import PRESETS, Preset

OVERLAP_S = 900.0
_URL_SLOT = re.compile(r"\{([A-Za-z0-9_]+)\}")


class ApiSource:
    """One JSON API endpoint (see the module doc)."""

    def __init__(self, cfg: ApiSourceSettings, ingest: IngestSettings, http: HttpClient) -> None:
        self.name, self.cfg, self.http = cfg.name, cfg, http
        preset = PRESETS[cfg.preset] if cfg.preset else None
        url = cfg.url or (preset.url if preset else None)
        if not url:
            raise ConfigError(f"ingest source {cfg.name!r}: an api source needs url or preset "
                              f"(one of {sorted(PRESETS)})")
        self.url = url
        self.params: dict[str, str] = {**(preset.params if preset else {}), **{k: str(v) for k, v in cfg.params.items()}}
        mapping = cfg.mapping if cfg.mapping is not None else (preset.mapping if preset else None)
        if mapping is None:
            raise ConfigError(f"ingest source {cfg.name!r}: an api source without a preset needs a mapping, "
                              "e.g. {items: articles, title: title, time: publishedAt, url: url}")
        self.mapping: JsonMapping = mapping_for(mapping)
        self.preset = preset
        self.cursor_param = cfg.cursor_param or (preset.cursor_param if preset else None)
        self.key = self._api_key(preset)
        missing = [p for p in (preset.required if preset else ()) if p not in self.params]
        if missing:
            raise ConfigError(f"ingest source {cfg.name!r}: preset {cfg.preset!r} needs params {missing} "
                              f"(see {preset.docs if preset else 'its API docs'})")
        self.tz = resolve_tz(cfg.timezone)
        self.opts = Options(cfg.name, self.tz, cfg.lang, None, ingest.max_body_chars,
                            timedelta(seconds=ingest.max_future_s))
        self.request(Checkpoint(), datetime.now(UTC))  # placeholders fail now, not at the first fetch

    def _api_key(self, preset: Preset | None) -> str | None:
        key = self.cfg.api_key.get_secret_value() if self.cfg.api_key else None
        if key is None and self.cfg.api_key_env:
            key = os.environ.get(self.cfg.api_key_env) or None
        if key is None and preset is not None and preset.key_required:
            where = f"environment variable {self.cfg.api_key_env} is empty" if self.cfg.api_key_env else "none is set"
            raise ConfigError(f"ingest source {self.cfg.name!r}: preset {self.cfg.preset!r} needs an API key and "
                              f"{where}; set api_key or api_key_env")
        return key

    def request(self, checkpoint: Checkpoint, now: datetime) -> tuple[str, dict[str, str], dict[str, str]]:
        """The URL, query parameters and headers of the next request (pure; exposed for tests)."""
        since = (datetime.fromtimestamp(checkpoint.since - OVERLAP_S, UTC) if checkpoint.since
                 else now - timedelta(seconds=self.cfg.lookback_s))
        values: dict[str, Any] = {"since": since, "now": now, "cursor": checkpoint.cursor or "",
                                  "api_key": self.key or ""}
        params = {k: _format(v, values, self.name, k) for k, v in self.params.items()}
        in_url = set(_URL_SLOT.findall(self.url))
        url = _URL_SLOT.sub(lambda m: params.get(m.group(1), m.group(0)), self.url)
        params = {k: v for k, v in params.items() if k not in in_url}
        if self.cursor_param and checkpoint.cursor:
            params[self.cursor_param] = checkpoint.cursor
        headers = dict(self.cfg.headers)
        if self.key and self.preset is not None:
            if self.preset.key_header:
                headers[self.preset.key_header] = self.key
            elif self.preset.key_param:
                params[self.preset.key_param] = self.key
        return url, params, headers

    def fetch(self, checkpoint: Checkpoint, now: datetime) -> Fetch:
        """GET the endpoint and read it through the mapping."""
        url, params, headers = self.request(checkpoint, now)
        response = self.http.get(url, source=self.name, params=params, headers=headers,
                                 timeout_s=self.cfg.timeout_s, secrets=[self.key] if self.key else [])
        try:
            doc = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(f"source {self.name}: {url} did not return JSON ({exc}): "
                              f"{response.content[:120]!r}; expected a JSON API response") from exc
        results = parse_json_doc(doc, self.mapping, replace(self.opts, fetched_at=now))
        if len(results) == 1 and isinstance(results[0], Skipped) and results[0].reason in DOCUMENT_REASONS:
            raise SourceError(f"source {self.name}: {url} answered something the mapping cannot read "
                              f"({results[0].reason}: {results[0].excerpt[:160]})")
        cursor = get_path(doc, self.mapping.cursor) if self.mapping.cursor else None
        new_cursor = str(cursor) if cursor not in (None, "", 0) else checkpoint.cursor
        return Fetch(results, replace(checkpoint, cursor=new_cursor, since=now.timestamp()))

    def warm(self) -> None:
        """Nothing to load ahead: connections open on the first fetch."""

    def close(self) -> None:
        """The shared HTTP client belongs to the worker."""


def _format(value: str, values: Mapping[str, Any], source: str, key: str) -> str:
    if "{" not in value:
        return value
    try:
        return value.format_map(values)
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        raise ConfigError(f"ingest source {source!r}: parameter {key}={value!r} cannot be filled ({exc}); "
                          "expected placeholders among {since:%Y-%m-%d}, {now:...}, {cursor}, {api_key}") from exc
