"""Settings sections of alerting: the index, the detectors and the alert sinks."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from finsentinel.settings.core import _Section


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
    es_labels_index: str = Field(
        default="finsentinel-labels", pattern=r"^[a-z0-9][a-z0-9_\-]*$",
        description="people's sentiment / topic labels of items (`finsentinel label`)",
    )
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

    @field_validator("es_refresh", mode="before")
    @classmethod
    def _refresh_as_text(cls, value: object) -> object:
        """``es_refresh: true`` in YAML is a boolean: take it as the string Elasticsearch expects."""
        return str(value).lower() if isinstance(value, bool) else value


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
    settle_minutes: int = Field(
        default=60, ge=1,
        description="live runs (finsentinel alert): with nothing newer indexed, how long after the newest item "
        "the last arrival waits before it is judged (a quiet feed, not a classify backlog); items indexed up to "
        "this long after their arrival was judged are counted as late",
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
    ledger_path: Path | None = Field(
        default=Path("var/alert-deliveries.sqlite3"),
        description="what each sink delivered, so a restarted alert worker re-sends what was queued but not "
        "delivered; null: no ledger (a restart sends nothing the index already holds)",
    )


class DashboardSettings(_Section):
    """The built-in dashboard (``finsentinel dashboard``), read-only over the configured index."""

    host: str = Field(
        default="127.0.0.1",
        description="address to listen on; without username/password keep it on loopback (or behind a proxy "
        "that authenticates)",
    )
    port: int = Field(default=8050, ge=1, le=65535)
    username: str | None = Field(default=None, min_length=1, description="with password: HTTP basic auth")
    password: SecretStr | None = Field(default=None, description="with username: HTTP basic auth (a secret)")

    @model_validator(mode="after")
    def _both_or_neither(self) -> DashboardSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password (HTTP basic auth), or neither")
        return self


class AlertingSettings(_Section):
    """The index, the detector, the alert sinks and the dashboard."""

    index: IndexSettings = IndexSettings()
    detect: DetectSettings = DetectSettings()
    notify: NotifySettings = NotifySettings()
    dashboard: DashboardSettings = DashboardSettings()
