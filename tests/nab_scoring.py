"""A NAB-style scorer (Numenta Anomaly Benchmark v1.1 scoring rules), for the detector tests.

Hand-written because NAB is not a library on PyPI (it is a research repository with its own
runner and pinned, old dependencies); the rules below follow its ``sweeper.py`` and
``runner.py`` (Lavin & Ahmad 2015; Ahmad et al. 2017):

* the first 15% of each file (at most 750 rows) is probationary: detections there are ignored;
* a detection inside a labelled window earns ``A_TP * sigma(-(right - i + 1) / width) / sigma(-1)``
  where ``sigma(x) = 2 / (1 + exp(5x)) - 1`` (the "scaled sigmoid"): 1 at the left edge, about 0 at
  the right edge; only the best (earliest) detection of a window counts;
* a window with no detection costs ``-A_FN``;
* a detection outside every window costs ``A_FP * sigma(d)`` (a negative number), where ``d`` is
  its distance in rows from the end of the preceding window over that window's width less one;
  a detection with no preceding window costs the full ``-A_FP`` (``sigma(d) = -1`` for ``d >= 3``);
* the corpus score is normalised: ``100 * (S - S_null) / (S_perfect - S_null)``, with
  ``S_null = -A_FN * windows`` (a detector that never fires) and ``S_perfect = A_TP * windows``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PROBATION_PERCENT = 0.15
_NAB_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class Profile:
    """A NAB cost matrix."""

    name: str
    tp: float
    fp: float
    fn: float


STANDARD = Profile("standard", tp=1.0, fp=0.11, fn=1.0)
LOW_FP = Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0)
LOW_FN = Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0)


@dataclass(frozen=True, slots=True)
class FileScore:
    """The raw NAB score of one file and what it consists of."""

    raw: float
    windows: int
    true_positives: int
    false_positives: int
    missed: int


def scaled_sigmoid(position: float) -> float:
    """NAB's scaled sigmoid: about 1 at -1 (a window's left edge), 0 at 0, -1 from 3 on."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(rows: int) -> float:
    """Rows at the start of a file whose detections are not scored."""
    return min(math.floor(PROBATION_PERCENT * rows), PROBATION_PERCENT * 5000)


def parse_time(text: str) -> datetime:
    """A NAB timestamp (``2015-02-26 21:42:53``, optionally with ``.000000``), naive as NAB keeps it."""
    return datetime.strptime(text.split(".")[0], _NAB_TIME)  # noqa: DTZ007 - NAB times carry no zone


def score_file(timestamps: Sequence[datetime], detections: Iterable[datetime],
               windows: Sequence[tuple[datetime, datetime]], profile: Profile) -> FileScore:
    """NAB's raw score of binary ``detections`` on one file with labelled ``windows``."""
    index = {t: i for i, t in enumerate(timestamps)}
    hits = set()
    for t in detections:
        if t not in index:
            raise ValueError(f"detection at {t} is not a timestamp of the file")
        hits.add(index[t])
    bounds = []
    for start, end in sorted(windows):
        if start not in index or end not in index:
            raise ValueError(f"window {start}..{end} does not start and end on timestamps of the file")
        bounds.append((index[start], index[end]))
    probation = probation_length(len(timestamps))
    # A window counts when any of its rows is past the probationary period (as in NAB's sweeper).
    best: dict[int, float] = {w: -profile.fn for w, (_, hi) in enumerate(bounds) if hi >= probation}
    fp_total = 0.0
    false_positives = 0
    max_tp = scaled_sigmoid(-1.0)
    for i in sorted(hits):
        if i < probation:
            continue
        inside = [w for w, (lo, hi) in enumerate(bounds) if lo <= i <= hi]
        if inside:
            lo, hi = bounds[inside[0]]
            reward = scaled_sigmoid(-(hi - i + 1) / (hi - lo + 1)) * profile.tp / max_tp
            best[inside[0]] = max(best.get(inside[0], -profile.fn), reward)
            continue
        before = [hi for lo, hi in bounds if hi < i]
        if before:
            prev_hi = max(before)
            prev_lo = next(lo for lo, hi in bounds if hi == prev_hi)
            position = abs(prev_hi - i) / float(prev_hi - prev_lo)
        else:
            position = 3.0
        fp_total += scaled_sigmoid(position) * profile.fp
        false_positives += 1
    true_positives = sum(1 for v in best.values() if v > -profile.fn)
    return FileScore(raw=sum(best.values()) + fp_total, windows=len(best), true_positives=true_positives,
                     false_positives=false_positives, missed=len(best) - true_positives)


def normalised(scores: Sequence[FileScore], profile: Profile) -> float:
    """The corpus score: 0 for a detector that never fires, 100 for a perfect one."""
    windows = sum(s.windows for s in scores)
    null, perfect = -profile.fn * windows, profile.tp * windows
    return 100.0 * (sum(s.raw for s in scores) - null) / (perfect - null)


def read_series(path: Path) -> tuple[list[str], list[float]]:
    """The ``timestamp,value`` rows of a NAB csv, timestamps as written."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["timestamp"] for r in rows], [float(r["value"]) for r in rows]


def read_windows(path: Path) -> Mapping[str, list[tuple[datetime, datetime]]]:
    """``combined_windows.json``: file key -> [(start, end)]."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {key: [(parse_time(a), parse_time(b)) for a, b in spans] for key, spans in data.items()}
