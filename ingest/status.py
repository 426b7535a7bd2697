"""``finsentinel ingest status``: every source's counters and health, read from the ingest state file.

Read-only: the state file is opened in SQLite's read-only mode, so the command works beside a
running worker and never creates a file. Sources configured but never run show as such.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from finsentinel.settings import IngestSettings
from ingest.dedup import DedupStoreError
from ingest.health import Health, is_paused


@dataclass(frozen=True)
class SourceStatus:
    """One line of the status table."""

    source: str
    type: str
    state: str  # ok | never run | failing | paused | suspicious
    fetches: int
    fetched: int
    new: int
    duplicates: int
    near_duplicates: int
    skipped: int
    errors: int
    last_success: str | None
    paused_until: str | None
    last_error: str | None
    zero_streak: int = 0


def read_healths(path: Path) -> dict[str, Health]:
    """Health of every source recorded in the state file at ``path`` (empty when there is none yet)."""
    if not path.exists():
        return {}
    try:
        # as_uri() percent-encodes '#', '?' and '%', which would otherwise end or alter the file name
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=10.0)
        try:
            rows = conn.execute("SELECT source, health FROM sources").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise DedupStoreError(f"cannot read the ingest state at {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise DedupStoreError(f"cannot read the ingest state at {path}: {exc}") from exc
    return {str(name): Health.from_json(text) for name, text in rows}


def statuses(settings: IngestSettings, healths: Mapping[str, Health], now: float) -> list[SourceStatus]:
    """A row per configured source, then per source found only in the state file (type ``-``)."""
    types = {s.name: s.type for s in settings.sources}
    names = [s.name for s in settings.sources] + sorted(set(healths) - set(types))
    return [_row(name, types.get(name, "-"), healths.get(name), now) for name in names]


def _row(name: str, kind: str, health: Health | None, now: float) -> SourceStatus:
    h = health or Health()
    if health is None or h.fetches == 0:
        state = "never run"
    elif is_paused(h, now):
        state = "paused"
    elif h.suspicious:
        state = "suspicious"
    elif h.failures:
        state = "failing"
    else:
        state = "ok"
    return SourceStatus(name, kind, state, h.fetches, h.fetched, h.new, h.duplicates, h.near_duplicates, h.skipped,
                        h.errors, _iso(h.last_success), _iso(h.paused_until) if is_paused(h, now) else None,
                        h.last_error, h.zero_streak)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts is not None else None


_COLUMNS = ("source", "type", "state", "fetched", "new", "duplicates", "near_duplicates", "skipped", "errors",
            "last_success")
_HEADERS = ("SOURCE", "TYPE", "STATE", "FETCHED", "NEW", "DUP", "NEAR-DUP", "SKIPPED", "ERRORS", "LAST SUCCESS (UTC)")


def format_table(rows: Iterable[SourceStatus]) -> str:
    """The status rows as an aligned text table, with the last error under each failing source."""
    rows = list(rows)
    if not rows:
        return "no ingest sources configured and no state recorded\n"
    cells = [[str(getattr(r, c) if getattr(r, c) is not None else "-") for c in _COLUMNS] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(_HEADERS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(_HEADERS, widths, strict=True)).rstrip()]
    for row, status in zip(cells, rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if status.paused_until:
            lines.append(f"    paused until {status.paused_until}")
        if status.state == "suspicious":
            lines.append(f"    no items in the last {status.zero_streak} fetches, after having items")
        if status.last_error and status.state in ("failing", "paused"):
            lines.append(f"    last error: {status.last_error[:200]}")
    return "\n".join(lines) + "\n"
