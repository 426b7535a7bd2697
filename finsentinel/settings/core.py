"""Settings sections of the shared core: the bus, the classifier and training defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


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
