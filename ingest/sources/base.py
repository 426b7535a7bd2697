"""The source interface: a narrow Protocol that every source type (file, RSS, JSON API) implements.

A source reads one batch of entries per :meth:`Source.fetch` and hands back, with the results, the
checkpoint to save once those results are published: the worker saves it in the same transaction
as the dedup memory, so a restart neither re-publishes nor skips. Sources raise
:class:`~finsentinel.errors.SourceError` when a fetch fails (network, HTTP status, a document that
is not a feed any more); one malformed entry is a :class:`~ingest.parse.Skipped` result instead.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from finsentinel.schema import RawItem
from ingest.fingerprint import Fingerprint
from ingest.parse import Skipped


@dataclass(frozen=True)
class Checkpoint:
    """Where a source is: conditional-GET validators, API cursor, last fetch, replay position, file states.

    ``since`` is the POSIX time of the last successful fetch (API sources ask for items after it);
    ``files`` maps a file path to ``(mtime_ns, size)`` when it was last read; ``position`` counts
    the rows of ``replay_key`` already published, and ``replay_origin`` is the wall-clock start of a
    timed replay.
    """

    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None
    since: float | None = None
    position: int = 0
    replay_key: str | None = None
    replay_origin: float | None = None
    files: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise for the state store."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Checkpoint:
        """Parse what :meth:`to_json` wrote (unknown keys of other versions are ignored)."""
        if not text:
            return cls()
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["files"] = {k: (int(v[0]), int(v[1])) for k, v in (values.get("files") or {}).items()}
        return cls(**values)


@dataclass(frozen=True)
class Fetch:
    """What one fetch found, and the checkpoint that holds once it is published.

    ``more``: another fetch now would find more (a replay read in chunks). ``not_modified``: the
    server answered 304. ``files_read``/``files_unchanged``: file sources' bookkeeping.
    ``fingerprints``: near-dup fingerprints made already (by item id; None: too short to have one).
    """

    results: Sequence[RawItem | Skipped]
    checkpoint: Checkpoint
    more: bool = False
    not_modified: bool = False
    files_read: int = 0
    files_unchanged: int = 0
    fingerprints: Mapping[str, Fingerprint | None] = field(default_factory=dict)


@runtime_checkable
class Source(Protocol):
    """One configured source: a name (unique; it keys state) and a fetch."""

    name: str

    def fetch(self, checkpoint: Checkpoint, now: datetime) -> Fetch:
        """Read the next batch after ``checkpoint``; raise SourceError when the fetch fails."""
        ...

    def warm(self) -> None:
        """Load or start now what the first fetch would otherwise wait for (worker processes, models)."""
        ...

    def close(self) -> None:
        """Release what the source holds (connections, files)."""
        ...
