"""The negative-spike detector as state that is fed buckets one after another (see :mod:`.sentiment`).

A backfill feeds it every bucket in one call; a live detector keeps it between runs and feeds
it only the buckets closed since, so a run costs what is new, not the whole history, and gives
the alerts one backfill gives. Per key it keeps the baseline, the buckets its open episodes and
the next window still need, and its recent episodes; everything older is dropped. A key is
stepped only in buckets where it has items or an open episode; it learns the buckets it skipped
(to the bit as if stepped) before anything reads them (see :class:`Engine`). The baselines
themselves: :mod:`.baseline`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from alerting.detect.baseline import Baseline, Seasonality
from alerting.detect.lifecycle import Cell, SeriesKey, Step, build_alert, explained_by, p_value
from alerting.index.base import Scope
from finsentinel.schema import Alert
from finsentinel.settings import DetectSettings

log = logging.getLogger(__name__)

SCOPE_ORDER: dict[Scope, int] = {"entity": 0, "topic": 1, "overall": 2}
OVERALL: SeriesKey = ("overall", None)
_PRUNE_EVERY = 1024  # buckets judged between two prunings within one call

Explainer = Callable[["Engine", SeriesKey, int, int], tuple[float, Counter[str]]]


def _passes(window: Sequence[Step], base: Step, s: DetectSettings) -> bool:
    """The gates of an alert: enough negatives, ``min_ratio`` times the expected, p < ``p_value``."""
    negative, total = sum(x.negative for x in window), sum(x.total for x in window)
    if negative < s.min_negative or negative < s.min_ratio * sum(x.expected(base) for x in window):
        return False
    return p_value(negative, total, base.baseline) < s.p_value


def _starts_burst(value: float, expected: float, s: DetectSettings) -> bool:
    """Whether a leading bucket of an alerting window belongs to the burst: its part of
    ``min_negative`` and ``min_ratio`` times what was expected (one stray negative is not)."""
    return value > expected and value >= max(s.min_negative / s.window_buckets, s.min_ratio * expected)


@dataclass
class _Episode:
    lo: int
    alerting: list[int]
    shown: bool
    """Topic/overall: some alerting bucket was unexplained when judged (entity: always)."""
    why: str | None = None
    """The company that explained its first alerting bucket."""
    final: bool = False
    """Resolved: no later bucket can join it, its alert no longer changes."""


@dataclass
class KeyScan:
    """One key: its baseline, the steps and cells still needed, and its recent episodes."""

    base: Baseline
    steps: dict[int, Step] = field(default_factory=dict)
    cells: dict[int, Cell] = field(default_factory=dict)
    episodes: list[_Episode] = field(default_factory=list)
    """Open episodes, and closed ones an open episode of another key may still look back at."""
    upto: int | None = None
    """The last bucket the baseline has learned (None: none yet)."""

    def test(self, bucket: int, first: int, s: DetectSettings) -> int | None:
        """Test the window ending at ``bucket``; return where its burst begins, or None.

        The whole window is judged by the baseline from before it, so the burst under test has
        not yet taught the baseline anything. Leading buckets that are not burst-like themselves
        are left out of the burst while what remains still passes.
        """
        lo = start = max(first, bucket - s.window_buckets + 1)
        base = self.steps[lo]
        window = [self.steps[b] for b in range(lo, bucket + 1)]
        if window[-1].negative <= window[-1].expected(base) or not _passes(window, base, s):
            return None  # the current bucket must itself carry excess negatives
        while (lo < bucket and not _starts_burst(self.steps[lo].negative, self.steps[lo].expected(base), s)
               and _passes(window[lo - start + 1:], base, s)):
            lo += 1
        return lo

    def step(self, bucket: int, first: int, prior: float, factor: float, s: DetectSettings) -> Step:
        """Judge ``bucket`` against the baseline from before it, then let the baseline learn it."""
        cell = self.cells.get(bucket)
        total, negative = (cell.total, cell.negative) if cell else (0.0, 0.0)
        base = self.base
        share = base.share(prior)
        self.steps[bucket] = Step(negative, total, base.level, share, factor)
        onset = self.test(bucket, first, s) if base.buckets >= s.warmup_buckets and negative else None
        if onset is None:
            base.update_count(negative / factor)
            base.update_share(negative, total, share)
        else:  # an alerting bucket teaches the baseline only what it expected
            anchor = max(first, bucket - s.window_buckets + 1)
            self.steps[bucket] = Step(negative, total, base.level, share, factor, onset, anchor)
            base.update_count(min(negative / factor, base.level))
            base.update_share(min(negative, share * total), total, share)
        self.upto = bucket
        return self.steps[bucket]

    def catch_up(self, through: int, first: int, keep: int, overall: Mapping[int, Step]) -> None:
        """Learn the buckets up to ``through`` skipped while the key had no items (see
        :meth:`Baseline.idle`); the steps from ``keep`` on are kept."""
        lo = first if self.upto is None else self.upto + 1
        if lo <= through:
            self.base.idle(lo, through, keep, overall, self.steps)
            self.upto = through

    def join(self, bucket: int, onset: int, shown: bool, s: DetectSettings) -> _Episode:
        """Add alerting ``bucket`` to the open episode, or start one (at ``onset``, after the last)."""
        last = self.episodes[-1] if self.episodes else None
        if last is not None and bucket - last.alerting[-1] - 1 <= s.cooldown_buckets:
            last.alerting.append(bucket)
            return last
        episode = _Episode(max(onset, last.alerting[-1] + 1) if last else onset, [bucket], shown)
        self.episodes.append(episode)
        return episode

    def prune(self, keep_from: int) -> None:
        """Forget buckets before ``keep_from`` and the episodes that ended before it."""
        for old in [b for b in self.steps if b < keep_from]:
            del self.steps[old]
        for old in [b for b in self.cells if b < keep_from]:
            del self.cells[old]
        while len(self.episodes) > 1 and self.episodes[0].final and self.episodes[0].alerting[-1] < keep_from:
            self.episodes.pop(0)


def _order(key: SeriesKey) -> tuple[int, str]:
    """Companies first, then topics, then overall (a topic or overall alert looks at the companies')."""
    return SCOPE_ORDER[key[0]], key[1] or ""


class Engine:
    """Detection state that judges buckets as they close (see the module doc).

    Callers add items' counts to :meth:`cell` of buckets not judged yet, then call
    :meth:`judge_through` with the last closed bucket; :meth:`alerts` gives every alert so far.
    ``explainer(engine, key, lo, hi)`` gives the negatives of a topic or overall key in buckets
    ``lo`` .. ``hi`` and how many of them were about each company.

    Most keys have no items in most buckets (thousands of companies): a key is stepped only in
    buckets where it has a cell or an open episode. In between it waits, and when it next has
    items, or before pruning (so at the end of every :meth:`judge_through`), its baseline learns
    the buckets it skipped with the same arithmetic in the same order (:meth:`Baseline.idle`),
    keeping the steps a window or an open episode may still read: the alerts and the state
    between calls are those of stepping every key in every bucket.
    """

    def __init__(self, settings: DetectSettings, explainer: Explainer) -> None:
        self.s, self.explainer = settings, explainer
        self.keys: dict[SeriesKey, KeyScan] = {OVERALL: KeyScan(Baseline(settings))}
        self.never_seen = KeyScan(Baseline(settings))
        """A key without items so far: where a key first seen now starts (every key's history
        starts with the data, not with its first item)."""
        self.season = Seasonality(settings)
        self.first: int | None = None
        self.last: int | None = None
        """The last bucket judged."""
        self.done: list[Alert] = []
        """The alerts of resolved episodes (final)."""
        self._active: dict[int, set[SeriesKey]] = {}
        """Per bucket not judged yet: the keys with a cell in it."""
        self._open: set[SeriesKey] = set()
        """The keys with an episode that is not final."""

    def cell(self, key: SeriesKey, bucket: int) -> Cell:
        """The cell of ``key`` in ``bucket`` (not judged yet) to add counts to."""
        scan = self.keys.get(key)
        if scan is None:
            base = self.never_seen  # caught up through the last bucket judged (see _prune)
            scan = self.keys[key] = KeyScan(base.base.copy(), dict(base.steps), upto=base.upto)
        cell = scan.cells.get(bucket)
        if cell is None:
            cell = scan.cells[bucket] = Cell()
            self._active.setdefault(bucket, set()).add(key)
        return cell

    def judge_through(self, last: int) -> None:
        """Judge every bucket up to ``last`` that is not judged yet."""
        if self.first is None:
            cells = [b for scan in self.keys.values() for b in scan.cells]
            if not cells or min(cells) > last:
                return
            self.first = min(cells)
        start = self.first if self.last is None else self.last + 1
        for bucket in range(start, last + 1):
            self._judge(bucket, self.first)
            if (bucket - start) % _PRUNE_EVERY == _PRUNE_EVERY - 1:  # a long backfill stays small too
                self._prune(bucket)
        if self.last is not None:
            self._prune(self.last)
            for stale in [b for b in self._active if b <= self.last]:  # cells of buckets judged before
                del self._active[stale]

    def _judge(self, bucket: int, first: int) -> None:
        s = self.s
        overall = self.keys[OVERALL]
        cell = overall.cells.get(bucket)
        factor = self.season.next(bucket, cell.total if cell else 0.0)
        keep = self._keep(bucket)  # a catch-up keeps what a window or an episode open now may read
        step = overall.step(bucket, first, s.prior_share, factor, s)
        prior = step.baseline
        for key in sorted(self._active.pop(bucket, set()) | self._open | {OVERALL}, key=_order):
            if key[0] not in s.scopes:
                continue
            scan = self.keys[key]
            if key == OVERALL:
                step = overall.steps[bucket]
            else:
                scan.catch_up(bucket - 1, first, keep, overall.steps)
                step = scan.step(bucket, first, prior, factor, s)
            if step.onset is not None:
                self._alerting(key, scan, bucket, step.onset)
        self.last = bucket
        for key in sorted(self._open, key=_order):
            episodes = self.keys[key].episodes
            for episode in episodes:
                if not episode.final and bucket - episode.alerting[-1] > s.cooldown_buckets:
                    self._finish(key, episode)
            if all(e.final for e in episodes):
                self._open.discard(key)

    def _alerting(self, key: SeriesKey, scan: KeyScan, bucket: int, onset: int) -> None:
        episode = scan.join(bucket, onset, key[0] == "entity", self.s)
        self._open.add(key)
        if episode.shown:
            return
        # kept once any of its alerting buckets was unexplained when it closed (a live run raised it then)
        entities = {name: [(e.lo, e.alerting) for e in other.episodes]
                    for (scope, name), other in self.keys.items() if scope == "entity" and name is not None}
        why = explained_by(key, episode.lo, bucket, lambda k, lo, hi: self.explainer(self, k, lo, hi),
                           entities, self.s)
        episode.shown = why is None
        episode.why = episode.why or why

    def _finish(self, key: SeriesKey, episode: _Episode) -> None:
        episode.final = True
        alert = self._build(key, episode)
        if episode.shown:
            self.done.append(alert)
        else:
            log.debug("suppressed %s alert %s for %s at %s: explained by the alert on %s",
                      key[0], alert.id, key[1] or "*", alert.start.isoformat(), episode.why)

    def _build(self, key: SeriesKey, episode: _Episode) -> Alert:
        scan = self.keys[key]
        assert self.last is not None  # noqa: S101 - episodes exist only once buckets were judged
        return build_alert(key, episode.lo, episode.alerting, scan.steps, scan.cells, self.last, self.s)

    def _keep(self, last: int) -> int:
        """The first bucket that a window after ``last`` or an open episode may still read."""
        keep = last - self.s.window_buckets + 1
        for key in self._open:
            scan = self.keys[key]
            for episode in scan.episodes:
                if not episode.final:
                    keep = min(keep, scan.steps[episode.alerting[0]].anchor)
        return keep

    def _prune(self, last: int) -> None:
        """Catch every key up through ``last``, then drop what no open episode and no later window can need."""
        keep, overall = self._keep(last), self.keys[OVERALL].steps
        assert self.first is not None  # noqa: S101 - pruned only once buckets were judged
        for key, scan in self.keys.items():
            if key[0] in self.s.scopes:  # a key out of scope is never stepped
                scan.catch_up(last, self.first, keep, overall)
        self.never_seen.catch_up(last, self.first, keep, overall)
        for scan in (*self.keys.values(), self.never_seen):
            scan.prune(keep)

    def alerts(self) -> list[Alert]:
        """Every alert so far: resolved ones and those of open episodes, by start, scope and key."""
        alerts = list(self.done)
        for key, scan in self.keys.items():
            alerts += [self._build(key, e) for e in scan.episodes if e.shown and not e.final]
        alerts.sort(key=lambda a: (a.start, SCOPE_ORDER[a.scope], a.entity or a.topic or ""))
        return alerts


