"""APScheduler 3.x wiring: one interval job per source in one background scheduler.

Each job runs its source every ``interval_s`` seconds plus a random delay of up to ``jitter_s``
(so many sources, or many workers, do not hit servers in lock-step). A source never runs twice at
once (``max_instances=1``), runs missed while the process was busy collapse into one
(``coalesce``), and a run late by up to one interval still runs (``misfire_grace_time``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

MAX_THREADS = 8


@dataclass(frozen=True)
class Job:
    """One source's schedule: what to run, how often, with how much jitter."""

    name: str
    run: Callable[[], object]
    interval_s: float
    jitter_s: float = 0.0


def build_scheduler(jobs: Sequence[Job], start_spread_s: float = 1.0) -> BackgroundScheduler:
    """A scheduler (not started) running every job now, then on its interval.

    First runs are spread over ``start_spread_s`` (at most the shortest interval) so that a worker
    with many sources does not fetch them all in the same instant.
    """
    scheduler = BackgroundScheduler(
        timezone=UTC, executors={"default": ThreadPoolExecutor(max(1, min(MAX_THREADS, len(jobs))))},
    )
    now = datetime.now(UTC)
    spread = min([start_spread_s, *(job.interval_s for job in jobs)])
    for i, job in enumerate(jobs):
        first = now + timedelta(seconds=spread * i / max(1, len(jobs)))
        trigger = IntervalTrigger(seconds=job.interval_s, jitter=job.jitter_s or None, timezone=UTC)
        scheduler.add_job(
            job.run, trigger, id=job.name, name=job.name, next_run_time=first, max_instances=1, coalesce=True,
            misfire_grace_time=max(1, int(job.interval_s)), replace_existing=True,
        )
    return scheduler
