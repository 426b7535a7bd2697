"""Per-source health: cumulative counters, the circuit breaker, and the 'silently returns nothing' check.

Pure functions over a frozen :class:`Health`; the worker applies them after each fetch and the
state store persists the result, so ``finsentinel ingest status`` can show it from another process.

* A fetch that fails increments ``failures``; at ``breaker_failures`` failures in a row the source
  is paused (circuit open) for ``breaker_pause_s``, doubling at each re-opening up to
  ``breaker_max_pause_s``. After the pause one trial fetch runs (half-open): success closes the
  circuit, failure re-opens it at once.
* A source that had items and then returns zero items ``suspicious_after`` fetches in a row is
  flagged ``suspicious`` (the scraper that stops finding anything without an error); a fetch with
  items clears the flag. A 304 Not Modified says nothing either way.

Hand-written rather than with a breaker library (pybreaker): the state must survive restarts in
the ingest SQLite file and be readable by the status command, which such libraries do not offer.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, replace
from typing import Any

from finsentinel.settings import HttpSettings


@dataclass(frozen=True)
class Counts:
    """What one fetch of a source yielded after dedup."""

    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Health:
    """Cumulative counters and failure state of one source (times are POSIX seconds)."""

    fetches: int = 0
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    skipped: int = 0
    errors: int = 0
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0
    paused_until: float | None = None
    pauses: int = 0
    zero_streak: int = 0
    had_items: bool = False
    suspicious: bool = False

    def to_json(self) -> str:
        """Serialise for the state store."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Health:
        """Parse what :meth:`to_json` wrote (unknown keys of other versions are ignored)."""
        if not text:
            return cls()
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def is_paused(health: Health, now: float) -> bool:
    """Whether the circuit is open: the source must not be fetched before ``paused_until``."""
    return health.paused_until is not None and now < health.paused_until


def after_success(health: Health, counts: Counts, now: float, policy: HttpSettings,
                  not_modified: bool = False) -> Health:
    """The health after a successful fetch: counters added, circuit closed, zero streak updated."""
    found = counts.fetched > 0
    if not_modified:
        streak, suspicious = health.zero_streak, health.suspicious
    elif found:
        streak, suspicious = 0, False
    else:
        streak = health.zero_streak + 1
        suspicious = health.suspicious or (health.had_items and streak >= policy.suspicious_after)
    return replace(
        health,
        fetches=health.fetches + 1,
        fetched=health.fetched + counts.fetched,
        new=health.new + counts.new,
        duplicates=health.duplicates + counts.duplicates,
        near_duplicates=health.near_duplicates + counts.near_duplicates,
        skipped=health.skipped + counts.skipped,
        last_success=now,
        failures=0,
        paused_until=None,
        pauses=0,
        zero_streak=streak,
        had_items=health.had_items or found,
        suspicious=suspicious,
    )


def after_failure(health: Health, error: str, now: float, policy: HttpSettings) -> Health:
    """The health after a failed fetch; opens the circuit at ``breaker_failures`` failures in a row."""
    failures = health.failures + 1
    paused_until, pauses = None, health.pauses
    if failures >= policy.breaker_failures:
        pause = min(policy.breaker_pause_s * 2 ** health.pauses, policy.breaker_max_pause_s)
        paused_until, pauses = now + pause, health.pauses + 1
    return replace(
        health,
        fetches=health.fetches + 1,
        errors=health.errors + 1,
        last_error=error[:500],
        last_error_at=now,
        failures=failures,
        paused_until=paused_until,
        pauses=pauses,
    )
