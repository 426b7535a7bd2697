"""Settings: one YAML file plus ``FINSENTINEL_*`` environment overrides.

Precedence, highest first: keyword arguments, environment (``FINSENTINEL_BUS__BACKEND=kafka``;
nested keys joined by ``__``), the YAML file (``finsentinel.yaml`` in the working directory, or
the path in ``FINSENTINEL_CONFIG``), defaults. Unknown keys and wrong types fail at start-up
with a message naming the key. Credentials are :class:`SecretStr` and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from finsentinel.errors import ConfigError

CONFIG_ENV = "FINSENTINEL_CONFIG"
DEFAULT_CONFIG_FILE = "finsentinel.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalBusSettings(_Section):
    path: Path = Path("var/bus.sqlite3")


class KafkaSettings(_Section):
    bootstrap_servers: str = "localhost:9092"
    client_id: str = "finsentinel"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    request_timeout_ms: int = Field(default=30000, gt=0)


class TopicSettings(_Section):
    raw: str = "news.raw"
    scored: str = "news.scored"
    alerts: str = "alerts"


class BusSettings(_Section):
    backend: Literal["local", "kafka"] = "local"
    local: LocalBusSettings = LocalBusSettings()
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()


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


class NlpSettings(_Section):
    """The classifier(s) of the classify stage: models, language routing, inference engine, privacy."""

    model_dir: Path = Field(
        default=Path("models/finsentinel-seed"),
        description="the default model: scores every language without a route in 'models'",
    )
    base_model: str = Field(default="bundled-minilm", description="HF checkpoint dir or 'bundled-minilm'")
    watchlist: Path | None = None
    models: dict[str, Path] = Field(
        default={}, description="language routing, e.g. {en: models/finsentinel-en, zh: models/finsentinel-zh}"
    )
    reference_models: bool = Field(
        default=True,
        description="when 'models' is empty, route en/zh to models/finsentinel-en and models/finsentinel-zh "
        "if those hold trained models (written by `make model`)",
    )
    default_languages: list[str] = Field(
        default=["en", "zh"],
        description="languages the default model is trained for; items in other unrouted languages are "
        "scored by it and flagged lang_unsupported",
    )
    taxonomy: dict[str, list[str]] = Field(
        default={},
        description="topic taxonomy per language: the model serving that language must have exactly these "
        "topics (checked at start-up; `finsentinel train --lang` checks training data against it)",
    )
    backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        default="torch", description="inference backend; the onnx ones need `finsentinel export` first"
    )
    batch_size: int = Field(default=64, ge=1, description="largest batch the inference engine runs")
    max_wait_ms: float = Field(
        default=5.0, ge=0, description="dynamic batching: longest wait for more texts after the first"
    )
    max_length: int = Field(default=64, ge=8, le=512)
    threads: int = Field(default=0, ge=0, description="inference threads; 0 = library default")
    mask_pii: bool = Field(
        default=True, description="mask phones, e-mails, Chinese ID and card numbers before classifying/indexing"
    )


class TrainingSettings(_Section):
    """Defaults of `finsentinel train` (command-line options override them)."""

    label_map: dict[str, str] = Field(
        default={}, description="sentiment label translation, e.g. {Bearish: negative, Bullish: positive}"
    )
    args: dict[str, Any] = Field(
        default={}, description="training argument overrides (see training.args.TrainingArgs), e.g. {epochs: 3}"
    )
    data_dir: Path = Field(default=Path("../shared/data"), description="labelled data of `make model`")


class IndexSettings(_Section):
    """Where scored items and alerts are stored and searched (see alerting.index)."""

    backend: Literal["sqlite", "elasticsearch"] = Field(
        default="sqlite", description="'sqlite' (embedded file) or 'elasticsearch' (es_* settings)"
    )
    path: Path = Field(default=Path("var/index.sqlite3"), description="SQLite index file (backend sqlite)")
    search_chars: int = Field(
        default=2000, ge=100,
        description="characters of title + body indexed for substring search (longer bodies are searchable "
        "by their start); the full item is stored regardless",
    )
    es_url: str = Field(default="http://localhost:9200", description="Elasticsearch URL (https for TLS)")
    es_api_key: SecretStr | None = Field(default=None, description="API key (base64 'id:key'); beats basic auth")
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_verify_certs: bool = Field(default=True, description="verify the server's TLS certificate")
    es_ca_certs: Path | None = Field(default=None, description="CA bundle that signed the server certificate")
    es_index: str = Field(
        default="finsentinel-news", pattern=r"^[a-z0-9][a-z0-9_\-]*$",
        description="write alias of the item indices (backing indices <alias>-000001, ... roll over)",
    )
    es_alerts_index: str = Field(default="finsentinel-alerts", pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    es_cjk_analyzer: Literal["cjk", "smartcn", "ik"] = Field(
        default="cjk",
        description="analyzer of the Chinese text sub-fields: built-in 'cjk' (bigrams), or 'smartcn' / 'ik' "
        "when the cluster has the analysis-smartcn / analysis-ik plugin",
    )
    es_shards: int = Field(default=1, ge=1)
    es_replicas: int = Field(default=1, ge=0)
    es_ilm: bool = Field(default=True, description="manage rollover (and retention) with an ILM policy")
    es_rollover_max_age: str = Field(default="7d", pattern=r"^\d+[smhd]$")
    es_rollover_max_primary_shard_size: str = Field(default="25gb", pattern=r"^\d+(b|kb|mb|gb|tb)$")
    es_retention_days: int | None = Field(default=None, ge=1, description="delete rolled-over indices this old")
    es_refresh: Literal["false", "true", "wait_for"] = Field(
        default="false", description="refresh after each write: 'false' (near-real-time, fastest), 'wait_for', 'true'"
    )
    es_timeout_s: float = Field(default=30.0, gt=0)
    es_max_retries: int = Field(default=5, ge=0, description="retries of a request or a rejected (429) bulk item")
    es_backoff_s: float = Field(default=1.0, gt=0, description="first retry delay; doubles on each retry")
    es_max_backoff_s: float = Field(default=60.0, gt=0)


class SeriesSettings(_Section):
    """The count-series detector (``finsentinel detect --series``; see alerting.detect.series).

    The defaults are the one configuration scored on the NAB Twitter series (5-minute buckets).
    """

    z_threshold: float = Field(
        default=5.5, gt=0, description="robust z-score of log1p(count) against the seasonal baseline that alerts"
    )
    min_count: float = Field(default=1.0, ge=0, description="smallest count that can alert")
    halflife_buckets: float = Field(default=288.0, gt=0, description="half-life of the level, in buckets")
    spread_halflife_buckets: float = Field(
        default=2016.0, gt=0, description="half-life of the spread (mean absolute deviation), in buckets"
    )
    clip_mads: float = Field(
        default=4.0, gt=0, description="a bucket teaches the baseline at most this many spreads of change"
    )
    initial_spread: float = Field(default=0.5, gt=0, description="spread assumed before history (log scale)")
    min_spread: float = Field(default=0.05, gt=0, description="floor of the spread (log scale)")
    season_rate: float = Field(
        default=0.1, gt=0, le=1, description="weight of a new bucket in its hour-of-day profile slot "
        "(the hour-of-week corrections learn at twice the rate)",
    )
    weekly_after_days: float = Field(default=7.0, ge=0, description="history before hour-of-week profiles apply")
    daily_after_days: float = Field(default=3.0, ge=0, description="history before hour-of-day profiles apply")
    warmup_buckets: int = Field(default=288, ge=0, description="buckets of history before anything alerts")
    cooldown_buckets: int = Field(
        default=288, ge=0, description="quiet buckets allowed inside one episode before a new one is reported"
    )


class DetectSettings(_Section):
    """Negative-spike detection per company, topic and overall (see alerting.detect)."""

    bucket_minutes: int = Field(default=5, gt=0, description="width of the event-time buckets")
    window_buckets: int = Field(
        default=3, ge=1,
        description="buckets tested together: the current one and those before it (finds bursts that "
        "spread over several buckets); the current bucket must itself hold more negatives than expected",
    )
    min_negative: int = Field(default=5, ge=1, description="fewest negatives in the tested window that can alert")
    warmup_buckets: int = Field(default=12, ge=0, description="buckets of history before a key can alert")
    p_value: float = Field(
        default=1e-4, gt=0, lt=1, description="one-sided binomial test threshold on the window's negative share"
    )
    min_ratio: float = Field(
        default=3.0, gt=1, description="window negatives over the usual negative count for the window, at least"
    )
    prior_share: float = Field(default=0.2, gt=0, lt=1, description="negative share assumed before history")
    prior_weight: float = Field(
        default=20.0, gt=0,
        description="items' worth of weight of the prior share (the overall share for companies and topics) "
        "in a key's baseline share; a company with little history leans on the overall share",
    )
    halflife_buckets: float = Field(default=48.0, gt=0, description="half-life of the baseline, in buckets")
    clip_mads: float = Field(
        default=3.0, gt=0,
        description="robust baseline: one bucket moves the baseline by at most this many running deviations",
    )
    cooldown_buckets: int = Field(
        default=6, ge=0, description="quiet buckets allowed inside one alert episode before a new alert starts"
    )
    high_p_value: float = Field(default=1e-6, gt=0, lt=1, description="p-value for severity 'high'")
    high_ratio: float = Field(default=5.0, gt=1, description="observed/expected ratio also needed for 'high'")
    critical_p_value: float = Field(default=1e-9, gt=0, lt=1, description="p-value for severity 'critical'")
    critical_ratio: float = Field(default=8.0, gt=1, description="ratio also needed for 'critical'")
    explain_share: float = Field(
        default=0.5, gt=0, le=1,
        description="a topic/overall alert whose negatives are at least this share about one company "
        "that has its own overlapping alert is suppressed as explained by it",
    )
    max_headlines: int = Field(default=5, ge=0, description="most negative headlines attached to an alert")
    scopes: list[Literal["entity", "topic", "overall"]] = ["entity", "topic", "overall"]
    lateness_buckets: int = Field(
        default=2, ge=0,
        description="allowed lateness: a bucket is judged once items published this many buckets after its end "
        "have been seen; an item arriving after its bucket was judged is late (indexed, not counted)",
    )
    count_copies: bool = Field(
        default=False, description="count each syndicated copy of an item as a report (default: copies are spread)"
    )
    seasonality: bool = Field(default=True, description="scale expected counts by the volume's hourly profile")
    season_rate_per_hour: float = Field(
        default=0.3, gt=0, le=1,
        description="weight of each new hour of data in its hour-of-day profile slot (whatever the bucket width)",
    )
    weekly_after_days: float = Field(default=14.0, ge=0, description="history before hour-of-week profiles apply")
    daily_after_days: float = Field(default=3.0, ge=0, description="history before hour-of-day profiles apply")
    series: SeriesSettings = SeriesSettings()


class WebhookSinkSettings(_Section):
    """POST each alert as JSON (or a Slack-compatible message) to ``url``."""

    url: str = Field(pattern=r"^https?://")
    format: Literal["json", "slack"] = Field(
        default="json", description="'json': the alert record; 'slack': {text, blocks} for a Slack incoming webhook"
    )
    secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key: signs '<timestamp>.<body>' in X-FinSentinel-Signature"
    )
    timeout_s: float = Field(default=10.0, gt=0)


class EmailSinkSettings(_Section):
    """Mail each alert through an SMTP server."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    tls: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="'starttls' (port 587), 'ssl' (implicit TLS, port 465), 'none' (local relay)"
    )
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    recipients: list[str] = Field(min_length=1)
    ca_certs: Path | None = Field(default=None, description="CA bundle for the server certificate (default: system)")
    timeout_s: float = Field(default=20.0, gt=0)


class NotifySettings(_Section):
    """Where alerts go (see alerting.notify). Every sink retries with backoff on its own thread."""

    log: bool = Field(default=True, description="log each new, escalated or resolved alert")
    topic: bool = Field(default=True, description="publish every new or changed alert to the alerts topic")
    index: bool = Field(
        default=False, description="store alerts in the index from the notifier (detection already stores them)"
    )
    webhooks: list[WebhookSinkSettings] = []
    email: EmailSinkSettings | None = None
    min_severity: Literal["warning", "high", "critical"] = Field(
        default="warning", description="log, webhooks and e-mail skip alerts below this severity"
    )
    retries: int = Field(default=3, ge=0, description="retries of a failed delivery, per sink")
    backoff_s: float = Field(default=1.0, gt=0, description="first retry delay; doubles on each retry")
    max_backoff_s: float = Field(default=30.0, gt=0)
    queue_size: int = Field(default=1000, ge=1, description="alerts waiting per sink before new ones are dropped")


class AlertingSettings(_Section):
    """The index, the detector and the alert sinks."""

    index: IndexSettings = IndexSettings()
    detect: DetectSettings = DetectSettings()
    notify: NotifySettings = NotifySettings()


class Settings(BaseSettings):
    """All FinSentinel settings."""

    model_config = SettingsConfigDict(
        env_prefix="FINSENTINEL_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    bus: BusSettings = BusSettings()
    ingest: IngestSettings = IngestSettings()
    nlp: NlpSettings = NlpSettings()
    training: TrainingSettings = TrainingSettings()
    alerting: AlertingSettings = AlertingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"settings file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"settings file {path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``path`` (or ``$FINSENTINEL_CONFIG``, or ./finsentinel.yaml if present).

    Raises :class:`ConfigError` naming every bad key.
    """
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if explicit or file.exists():
        data = _read_yaml(file)
    data = _deep_merge(data, overrides)
    try:
        # Environment beats the file: pydantic-settings merges env over init values only for
        # top-level keys, so the file goes in as init values and env sections are merged here.
        return Settings(**_deep_merge(data, _env_overrides()))
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            if e["type"] != "extra_forbidden"
            else f"  {'.'.join(str(p) for p in e['loc'])}: unknown key"
            for e in exc.errors()
        ]
        origin = f"settings file {file}" if explicit or file.exists() else "settings"
        raise ConfigError(f"invalid {origin} (or FINSENTINEL_* environment):\n" + "\n".join(lines)) from exc


def _env_overrides() -> dict[str, Any]:
    """``FINSENTINEL_A__B=v`` as ``{"a": {"b": "v"}}`` (values are parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for name, raw in os.environ.items():
        if not name.startswith("FINSENTINEL_") or name == CONFIG_ENV:
            continue
        parts = name[len("FINSENTINEL_") :].lower().split("__")
        if parts[0] not in Settings.model_fields:
            continue  # e.g. FINSENTINEL_KAFKA_BOOTSTRAP, used by the integration tests
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            node[parts[-1]] = raw
    return out


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render_settings(settings: Settings) -> str:
    """The effective settings as YAML, secrets masked."""
    data = settings.model_dump(mode="json")  # SecretStr dumps as '**********'
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
