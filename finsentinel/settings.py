"""Settings: one YAML file plus ``FINSENTINEL_*`` environment overrides.

Precedence, highest first: keyword arguments, environment (``FINSENTINEL_BUS__BACKEND=kafka``;
nested keys joined by ``__``), the YAML file (``finsentinel.yaml`` in the working directory, or
the path in ``FINSENTINEL_CONFIG``), defaults. Unknown keys and wrong types fail at start-up
with a message naming the key. Credentials are :class:`SecretStr` and never printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
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


class FileSourceSettings(_Section):
    """A file or directory replayed into the bus (RSS/Atom XML or JSON API responses).

    ``lang``: ``zh``/``en`` trusts the feed's language, ``auto`` detects it per item.
    ``timezone``: the zone of item times that carry no offset, an IANA name (``Asia/Shanghai``)
    or a fixed offset (``+08:00``). ``mapping`` (JSON only): a built-in field mapping
    (``newsapi``, ``social``) or an inline one, e.g. ``{items: data.posts, title: text,
    time: created_at, url: link}``; ``items``, ``title`` and ``time`` are required.
    """

    type: Literal["file"] = "file"
    name: str = Field(min_length=1)
    path: Path
    format: Literal["rss", "json"] = "rss"
    lang: Literal["zh", "en", "auto"] = "auto"
    timezone: str = Field(
        default="UTC",
        pattern=r"^(?:(?:UTC|GMT)?[+-]\d{1,2}(?::?\d{2})?|[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2})$",
    )
    mapping: (
        Literal["newsapi", "social"]
        | dict[Literal["items", "title", "body", "url", "time", "id", "status", "status_ok", "removed_title"], str]
    ) = "newsapi"


class IngestSettings(_Section):
    """File sources and the ingest worker's state (dedup memory, checkpoints) and schedule."""

    sources: list[FileSourceSettings] = []
    state_path: Path = Path("var/ingest.sqlite3")
    interval_s: float = Field(default=300.0, gt=0)
    max_body_chars: int = Field(default=20000, ge=100)


class NlpSettings(_Section):
    model_dir: Path = Path("models/finsentinel-seed")
    base_model: str = Field(default="bundled-minilm", description="HF checkpoint dir or 'bundled-minilm'")
    watchlist: Path | None = None
    batch_size: int = Field(default=32, ge=1)
    max_length: int = Field(default=64, ge=8, le=512)
    threads: int = Field(default=0, ge=0, description="torch threads; 0 = library default")


class IndexSettings(_Section):
    """Where scored items and alerts are stored and searched."""

    backend: Literal["sqlite", "elasticsearch"] = Field(
        default="sqlite", description="'sqlite' (embedded file); 'elasticsearch' comes with the alerting issue"
    )
    path: Path = Field(default=Path("var/index.sqlite3"), description="SQLite index file (backend sqlite)")
    search_chars: int = Field(
        default=2000, ge=100,
        description="characters of title + body indexed for full-text search by the sqlite backend "
        "(longer bodies are searchable by their start); the full item is stored regardless",
    )
    es_url: str = "http://localhost:9200"
    es_api_key: SecretStr | None = None
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_index: str = "finsentinel-news"


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


class AlertingSettings(_Section):
    """The index and the detector."""

    index: IndexSettings = IndexSettings()
    detect: DetectSettings = DetectSettings()


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
