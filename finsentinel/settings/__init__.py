"""Settings: one YAML file plus ``FINSENTINEL_*`` environment overrides.

Precedence, highest first: keyword arguments, environment (``FINSENTINEL_BUS__BACKEND=kafka``;
nested keys joined by ``__``), the YAML file (``finsentinel.yaml`` in the working directory, or
the path in ``FINSENTINEL_CONFIG``), defaults. Unknown keys and wrong types fail at start-up
with a message naming the key. Credentials are :class:`SecretStr` and never printed.
"""


from __future__ import annotations

import os
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from finsentinel.errors import ConfigError
from finsentinel.settings.alerting import (
    AlertingSettings,
    DashboardSettings,
    DetectSettings,
    EmailSinkSettings,
    IndexSettings,
    NotifySettings,
    SeriesSettings,
    WebhookSinkSettings,
)
from finsentinel.settings.core import (
    BusSettings,
    KafkaSettings,
    LocalBusSettings,
    NlpSettings,
    TopicSettings,
    TrainingSettings,
)
from finsentinel.settings.ingest import (
    ApiSourceSettings,
    ArticleSettings,
    FileSourceSettings,
    HttpSettings,
    IngestSettings,
    NearDupSettings,
    RssSourceSettings,
    SourceSettings,
)

__all__ = [
    "AlertingSettings", "ApiSourceSettings", "ArticleSettings", "BusSettings", "DashboardSettings", "DetectSettings",
    "EmailSinkSettings", "FileSourceSettings", "HttpSettings", "IndexSettings", "IngestSettings",
    "KafkaSettings", "LocalBusSettings", "NearDupSettings", "NlpSettings", "NotifySettings",
    "RssSourceSettings", "SeriesSettings", "Settings", "SourceSettings", "TopicSettings",
    "TrainingSettings", "WebhookSinkSettings", "load_settings", "render_settings",
]

CONFIG_ENV = "FINSENTINEL_CONFIG"
DEFAULT_CONFIG_FILE = "finsentinel.yaml"


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
        # The environment is read by load_settings (_env_overrides) and comes in as init values:
        # pydantic-settings' own env source would parse it again, as JSON, and crash on a
        # YAML list such as FINSENTINEL_ALERTING__DETECT__SCOPES='[entity, topic]'.
        return (init_settings,)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"settings file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"settings file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"settings file {path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, without PyYAML's quote of the line (it may hold a secret)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem or exc.context or 'syntax error'} (line {mark.line + 1}, column {mark.column + 1})"
    return type(exc).__name__


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``path`` (or ``$FINSENTINEL_CONFIG``, or ./finsentinel.yaml if present).

    Raises :class:`ConfigError` naming every bad key.
    """
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if explicit or file.exists():
        data = _read_yaml(file)
    try:
        # Environment beats the file, keyword arguments beat both; merged here, section by section.
        return Settings(**_deep_merge(_deep_merge(data, _env_overrides()), overrides))
    except ValidationError as exc:
        lines = [_error_line(e) for e in exc.errors()]
        origin = f"settings file {file}" if explicit or file.exists() else "settings"
        # Not chained: pydantic's own message repeats every input, secrets included.
        raise ConfigError(f"invalid {origin} (or FINSENTINEL_* environment):\n" + "\n".join(lines)) from None


def _leaves(annotation: Any, containers: bool = True) -> Iterator[Any]:
    """The types inside ``annotation``: through Optional, unions, Annotated and (if ``containers``)
    the item types of lists and mappings; otherwise ``list[str]`` is one type."""
    origin = get_origin(annotation)
    if origin is None or origin is Literal or not (containers or origin in (Annotated, Union, types.UnionType)):
        yield annotation
    else:
        args = get_args(annotation)
        for arg in args[:1] if origin is Annotated else args:
            yield from _leaves(arg, containers)


def _secret_names(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Names of the SecretStr fields of ``model`` and of every section below it."""
    seen = set() if seen is None else seen
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        for leaf in _leaves(info.annotation):
            if leaf is SecretStr:
                names.add(name)
            elif isinstance(leaf, type) and issubclass(leaf, BaseModel) and leaf not in seen:
                names |= _secret_names(leaf, seen)
    return names


def _masked(value: Any) -> Any:
    """``value`` with the values of secret keys (at any depth) replaced by asterisks."""
    if isinstance(value, dict):
        return {k: "**********" if k in SECRET_FIELDS else _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def _error_line(error: ErrorDetails) -> str:
    """One line per validation error: the key, what was expected and what came (never a secret)."""
    where = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"  {where}: unknown key"
    if error["type"] == "missing":  # its input is the enclosing section, which says nothing more
        return f"  {where}: {error['msg']}"
    value = error.get("input")
    if any(part in SECRET_FIELDS for part in error["loc"]):
        return f"  {where}: {error['msg']} (got a value of type {type(value).__name__}, not shown: it is a secret)"
    return f"  {where}: {error['msg']} (got {_masked(value)!r})"


_NULLS = frozenset({"null", "Null", "NULL", "~"})


def _env_overrides() -> dict[str, Any]:
    """``FINSENTINEL_A__B=v`` as ``{"a": {"b": "v"}}``.

    A text setting (string, secret, path, choice of strings) takes the value verbatim (``null``
    clears an optional one): a password ``123456`` or ``#x`` stays that string. Other values are
    parsed as YAML (numbers, booleans, ``[a, b]`` lists, ``{k: v}`` mappings).
    """
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
        kinds = _field_types(parts)
        if kinds and all(_is_text(kind) for kind in kinds - {type(None)}):
            node[parts[-1]] = None if raw in _NULLS and type(None) in kinds else raw
            continue
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            node[parts[-1]] = raw
    return out


def _field_types(parts: list[str]) -> set[Any]:
    """The types of the setting at ``parts`` (a path of section and key names); empty if none."""
    model: type[BaseModel] = Settings
    kinds: set[Any] = set()
    for i, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            return set()
        kinds = set(_leaves(info.annotation, containers=False))
        if i < len(parts) - 1:
            sections = [k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)]
            if len(sections) != 1:
                return set()
            model = sections[0]
    return kinds


def _is_text(kind: Any) -> bool:
    if get_origin(kind) is Literal:
        return all(isinstance(choice, str) for choice in get_args(kind))
    return kind in (str, SecretStr, Path)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


SECRET_FIELDS = frozenset(_secret_names(Settings))
"""Names of the settings that hold secrets (masked in error messages)."""


def render_settings(settings: Settings) -> str:
    """The effective settings as YAML, secrets masked."""
    data = settings.model_dump(mode="json")  # SecretStr dumps as '**********'
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
