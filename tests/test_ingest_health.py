"""Source health: counters, the circuit breaker (open, doubling, half-open), the 'silently returns nothing' flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from finsentinel.settings import HttpSettings
from ingest.dedup import DedupStore
from ingest.health import Counts, Health, after_failure, after_success, is_paused
from ingest.status import read_healths

POLICY = HttpSettings(breaker_failures=3, breaker_pause_s=60, breaker_max_pause_s=200, suspicious_after=2)


def test_success_adds_counters_and_clears_failures() -> None:
    health = after_failure(Health(), "boom", 10.0, POLICY)
    health = after_success(health, Counts(fetched=5, new=3, duplicates=1, near_duplicates=1), 20.0, POLICY)
    assert (health.fetches, health.fetched, health.new, health.duplicates, health.near_duplicates) == (2, 5, 3, 1, 1)
    assert health.failures == 0 and health.errors == 1 and health.last_error == "boom" and health.last_success == 20.0


def test_breaker_opens_doubles_and_closes() -> None:
    health = Health()
    for t in range(3):
        health = after_failure(health, "HTTP 503", 100.0 + t, POLICY)
    assert health.paused_until == 102.0 + 60 and is_paused(health, 150.0) and not is_paused(health, 170.0)
    health = after_failure(health, "HTTP 503", 170.0, POLICY)  # the trial after the pause failed: re-open
    assert health.paused_until == 170.0 + 120 and health.pauses == 2
    health = after_failure(health, "HTTP 503", 300.0, POLICY)
    assert health.paused_until == 300.0 + 200  # capped at breaker_max_pause_s
    health = after_success(health, Counts(fetched=1, new=1), 600.0, POLICY)
    assert health.paused_until is None and health.pauses == 0 and not is_paused(health, 600.0)


def test_zero_items_after_having_items_is_suspicious() -> None:
    health = after_success(Health(), Counts(), 1.0, POLICY)
    health = after_success(health, Counts(), 2.0, POLICY)
    assert not health.suspicious  # never had items: a quiet source, not a broken one
    health = after_success(health, Counts(fetched=4, new=4), 3.0, POLICY)
    health = after_success(health, Counts(), 4.0, POLICY)
    health = after_success(health, Counts(), 5.0, POLICY, not_modified=True)  # 304 says nothing
    assert not health.suspicious and health.zero_streak == 1
    health = after_success(health, Counts(), 6.0, POLICY)
    assert health.suspicious and health.zero_streak == 2
    health = after_success(health, Counts(fetched=1, duplicates=1), 7.0, POLICY)
    assert not health.suspicious and health.zero_streak == 0


def test_health_round_trips_through_json() -> None:
    health = after_failure(Health(fetched=3), "x" * 800, 5.0, POLICY)
    again = Health.from_json(health.to_json())
    assert again == health and len(again.last_error or "") == 500
    assert Health.from_json(None) == Health() and Health.from_json('{"fetched": 2, "from_the_future": 1}').fetched == 2


@pytest.mark.parametrize("folder", ["build#3", "what?", "100%25 done"])
def test_status_reads_a_state_file_whose_path_has_uri_characters(tmp_path: Path, folder: str) -> None:
    # read_healths opens the file through an SQLite URI (read-only mode): '#', '?' and '%' in the path
    # must not cut it short (reading, or creating, another file and showing every source as never run).
    path = tmp_path / folder / "ingest.sqlite3"
    store = DedupStore(path)
    store.save_health({"wire": Health(fetches=3, fetched=7)})
    store.close()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert read_healths(path) == {"wire": Health(fetches=3, fetched=7)}
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created beside it
