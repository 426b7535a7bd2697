"""Event-time buckets: epoch-aligned, ``bucket_minutes`` wide, numbered from the UNIX epoch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_index(when: datetime, bucket_minutes: int) -> int:
    """The epoch-aligned bucket that ``when`` (timezone-aware) falls into."""
    return (when - EPOCH) // timedelta(minutes=bucket_minutes)


def bucket_start(index: int, bucket_minutes: int) -> datetime:
    """The UTC start of bucket ``index``."""
    return EPOCH + index * timedelta(minutes=bucket_minutes)
