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
    """A file or directory replayed into the bus (RSS/Atom XML or JSON API responses)."""

    type: Literal["file"] = "file"
    name: str
    path: Path
    format: Literal["rss", "json"] = "rss"
    lang: Literal["zh", "en", "auto"] = "auto"
    timezone: str = "UTC"


class IngestSettings(_Section):
    sources: list[FileSourceSettings] = []
    state_path: Path = Path("var/ingest.sqlite3")
    interval_s: float = Field(default=300.0, gt=0)
    max_body_chars: int = Field(default=20000, gt=0)


class NlpSettings(_Section):
    model_dir: Path = Path("models/finsentinel-seed")
    base_model: str = Field(default="bundled-minilm", description="HF checkpoint dir or 'bundled-minilm'")
    watchlist: Path | None = None
    batch_size: int = Field(default=32, ge=1)
    max_length: int = Field(default=64, ge=8, le=512)
    threads: int = Field(default=0, ge=0, description="torch threads; 0 = library default")


class IndexSettings(_Section):
    backend: Literal["sqlite", "elasticsearch"] = "sqlite"
    path: Path = Path("var/index.sqlite3")
    es_url: str = "http://localhost:9200"
    es_api_key: SecretStr | None = None
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_index: str = "finsentinel-news"


class DetectSettings(_Section):
    bucket_minutes: int = Field(default=5, gt=0)
    min_negative: int = Field(default=5, ge=1, description="fewest negatives in a bucket that can alert")
    warmup_buckets: int = Field(default=12, ge=0, description="buckets of history before a key can alert")
    p_value: float = Field(default=1e-4, gt=0, lt=1, description="binomial test threshold on the negative share")
    min_ratio: float = Field(default=3.0, gt=1, description="observed negatives over expected, at least")
    prior_share: float = Field(default=0.2, gt=0, lt=1, description="negative share assumed before history")
    halflife_buckets: float = Field(default=48.0, gt=0)
    cooldown_buckets: int = Field(default=6, ge=0)
    scopes: list[Literal["entity", "topic", "overall"]] = ["entity", "topic", "overall"]


class AlertingSettings(_Section):
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
