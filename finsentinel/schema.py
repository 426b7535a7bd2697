"""Message schema: frozen, typed records with a schema version and strict JSON round-trip.

Records travel on the bus as UTF-8 JSON. ``from_json`` is strict: unknown fields, wrong
types, naive timestamps or another schema version raise :class:`SchemaError`, and the
worker that received the bytes dead-letters them with that reason.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from finsentinel.errors import SchemaError

SCHEMA_VERSION: Literal[1] = 1

Sentiment = Literal["negative", "neutral", "positive"]
SENTIMENTS: tuple[Sentiment, ...] = ("negative", "neutral", "positive")

_TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|spm|from|ref|ref_src|cmpid|share)$", re.I)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp has no time zone; expected an ISO 8601 time with offset, e.g. 2026-01-02T03:04:05Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00: an OverflowError would escape the validation
        raise ValueError(
            f"timestamp {value.isoformat()} is out of range in UTC; expected a time between years 1 and 9999"
        ) from None


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


@functools.lru_cache(maxsize=32768)  # an item's URL is needed for its id and again for its dedup keys
def canonical_url(url: str) -> str:
    """Return the URL with scheme/host lower-cased, fragment and tracking parameters removed.

    A URL that cannot be parsed (``http://[broken``: urlsplit raises ValueError) is kept as it is.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    if not parts.scheme or not parts.netloc:
        return url.strip()
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING_PARAMS.match(k)]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, urlencode(sorted(query)), ""))


def normalise_text(text: str) -> str:
    """NFKC (full-width to half-width), case-folded, whitespace collapsed: the basis of content hashes."""
    # str.split() splits on exactly the characters regex \s matches, several times faster than re.sub.
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def content_id(url: str | None, title: str, body: str = "") -> str:
    """A stable id from content: the canonical URL when there is one, else the normalised text.

    Re-delivery of the same item therefore produces the same id, and every write keyed by it
    (index upsert, dedup memory) is idempotent.
    """
    basis = "url:" + canonical_url(url) if url else "text:" + normalise_text(title + "\n" + body)
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, str_strip_whitespace=False)
    kind: ClassVar[str] = "record"

    schema_version: Literal[1] = SCHEMA_VERSION

    def to_json(self) -> bytes:
        """Serialise to compact UTF-8 JSON bytes."""
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        """Parse bytes from the bus; raise :class:`SchemaError` naming the bad fields."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise SchemaError(f"not a valid {cls.kind} (schema v{SCHEMA_VERSION}): {problems}") from exc


class RawItem(_Record):
    """One news article or social post as collected, before any model has seen it."""

    kind: ClassVar[str] = "RawItem"

    id: str = Field(min_length=8, max_length=64)
    source: str = Field(min_length=1)
    url: str | None = None
    title: str
    body: str = ""
    lang: str = Field(pattern=r"^(zh|en|other)$")
    published_at: UtcDatetime
    fetched_at: UtcDatetime
    entity_hints: tuple[str, ...] = ()
    copies: int = Field(default=1, ge=1)

    @property
    def text(self) -> str:
        """Title and body as one string, the classifier's input."""
        return f"{self.title}\n{self.body}".strip() if self.body else self.title


class ScoredItem(RawItem):
    """A :class:`RawItem` with topic, sentiment and linked companies added by the NLP stage."""

    kind: ClassVar[str] = "ScoredItem"

    topic: str
    topic_scores: dict[str, float]
    sentiment: Sentiment
    sentiment_scores: dict[str, float]
    sentiment_score: float = Field(ge=-1.0, le=1.0, description="P(positive) - P(negative)")
    entities: tuple[str, ...] = ()
    model_version: str
    flags: tuple[str, ...] = ()

    @classmethod
    def from_raw(cls, raw: RawItem, **scores: Any) -> ScoredItem:
        """Build from a raw item plus the fields the classifier adds."""
        return cls(**raw.model_dump(exclude={"schema_version"}), **scores)


class Headline(BaseModel):
    """One item behind an alert, for the reader to check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    url: str | None
    source: str
    published_at: UtcDatetime
    sentiment_score: float


class Alert(_Record):
    """A spike of negative sentiment for a company, a topic, or overall."""

    kind: ClassVar[str] = "Alert"

    id: str
    scope: Literal["entity", "topic", "overall"]
    entity: str | None = None
    topic: str | None = None
    start: UtcDatetime
    end: UtcDatetime
    bucket_minutes: int = Field(gt=0)
    observed: int = Field(ge=0, description="negative items in the alert window")
    expected: float = Field(ge=0, description="negative items the baseline expected")
    total: int = Field(ge=0)
    share: float
    baseline_share: float
    p_value: float
    severity: Literal["warning", "high", "critical"]
    status: Literal["open", "escalated", "resolved"] = "open"
    headlines: tuple[Headline, ...] = ()
    sources: tuple[str, ...] = ()
    created_at: UtcDatetime = Field(default_factory=lambda: datetime.now(UTC))


class Label(_Record):
    """A person's verdict on one indexed item's sentiment and/or topic: training data for the next model.

    One label per item: a later one replaces it. The text is kept as it was classified (personal
    data masked), so an export of labels does not depend on the item still being indexed.
    """

    kind: ClassVar[str] = "Label"

    item_id: str = Field(min_length=8, max_length=64)
    text: str = Field(min_length=1)
    lang: str = Field(pattern=r"^(zh|en|other)$")
    sentiment: Sentiment | None = None
    topic: str | None = Field(default=None, min_length=1)
    by: str = Field(min_length=1, description="who gave the label")
    note: str = ""
    predicted_sentiment: Sentiment | None = None
    predicted_topic: str | None = None
    created_at: UtcDatetime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="after")
    def _says_something(self) -> Self:
        if self.sentiment is None and self.topic is None:
            raise ValueError("a label needs a sentiment, a topic, or both")
        return self


def alert_id(scope: str, key: str | None, start: datetime) -> str:
    """Alerts of one episode share an id, so re-running detection updates rather than duplicates."""
    basis = f"{scope}|{key or '*'}|{start.astimezone(UTC).isoformat()}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:24]
