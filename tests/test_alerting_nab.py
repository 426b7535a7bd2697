"""NAB evaluation: the scorer's rules on hand-made cases, and the detector on the shared Twitter series."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from finsentinel.cli import main
from tests.nab_scoring import (
    LOW_FP,
    STANDARD,
    FileScore,
    normalised,
    parse_time,
    probation_length,
    read_series,
    read_windows,
    scaled_sigmoid,
    score_file,
)

T0 = datetime(2015, 3, 1)  # noqa: DTZ001 - NAB timestamps are naive
STEP = timedelta(minutes=5)
TIMES = [T0 + i * STEP for i in range(1000)]  # probation: the first 150 rows
WINDOW = (TIMES[400], TIMES[499])  # 100 rows


def test_scaled_sigmoid_matches_nab_landmarks() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0


def test_probation_is_15_percent_capped_at_750_rows() -> None:
    assert probation_length(1000) == 150
    assert probation_length(15902) == 750


def test_no_detection_scores_minus_one_per_window_and_normalises_to_zero() -> None:
    score = score_file(TIMES, [], [WINDOW], STANDARD)
    assert score == FileScore(raw=-1.0, windows=1, true_positives=0, false_positives=0, missed=1)
    assert normalised([score], STANDARD) == 0.0


def test_detection_at_the_left_edge_is_perfect_and_later_ones_add_nothing() -> None:
    score = score_file(TIMES, [TIMES[400], TIMES[450], TIMES[499]], [WINDOW], STANDARD)
    assert score.raw == pytest.approx(1.0)
    assert score.true_positives == 1 and score.false_positives == 0
    assert normalised([score], STANDARD) == pytest.approx(100.0)


def test_earlier_detection_in_a_window_earns_more() -> None:
    middle = score_file(TIMES, [TIMES[450]], [WINDOW], STANDARD).raw
    late = score_file(TIMES, [TIMES[495]], [WINDOW], STANDARD).raw
    # position -(499 - 450 + 1) / 100 = -0.5: the reward is sigma(-0.5) / sigma(-1)
    assert middle == pytest.approx(scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0))
    assert 0 < late < middle < 1


def test_false_positives_cost_by_distance_from_the_preceding_window() -> None:
    before = score_file(TIMES, [TIMES[300]], [WINDOW], STANDARD)
    assert before.raw == pytest.approx(-1.0 - 0.11)  # no preceding window: the full A_FP
    assert before.false_positives == 1
    just_after = score_file(TIMES, [TIMES[400], TIMES[510]], [WINDOW], STANDARD).raw
    far_after = score_file(TIMES, [TIMES[400], TIMES[900]], [WINDOW], STANDARD).raw
    assert just_after == pytest.approx(1.0 + 0.11 * scaled_sigmoid(11 / 99))
    assert far_after == pytest.approx(1.0 - 0.11)
    assert score_file(TIMES, [TIMES[300]], [WINDOW], LOW_FP).raw == pytest.approx(-1.22)


def test_detections_in_the_probationary_period_are_ignored() -> None:
    assert score_file(TIMES, [TIMES[10], TIMES[149]], [WINDOW], STANDARD).raw == -1.0
    assert score_file(TIMES, [TIMES[150]], [WINDOW], STANDARD).false_positives == 1


def test_corpus_normalisation_sums_files() -> None:
    perfect = FileScore(raw=2.0, windows=2, true_positives=2, false_positives=0, missed=0)
    missed = FileScore(raw=-1.0, windows=1, true_positives=0, false_positives=0, missed=1)
    assert normalised([perfect, missed], STANDARD) == pytest.approx(100 * (1.0 + 3) / 6)


def test_detections_must_be_timestamps_of_the_file() -> None:
    with pytest.raises(ValueError, match="not a timestamp"):
        score_file(TIMES, [T0 + timedelta(minutes=2)], [WINDOW], STANDARD)


SERIES = ("Twitter_volume_AAPL", "Twitter_volume_GOOG", "Twitter_volume_IBM")


def _detect(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["detect", "--series", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"alerts"}
    return list(out["alerts"])


def test_nab_twitter_scores_with_the_default_configuration(
    shared_data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no finsentinel.yaml: the one fixed default configuration
    monkeypatch.delenv("FINSENTINEL_CONFIG", raising=False)
    nab = shared_data / "nab"
    windows = read_windows(nab / "labels" / "combined_windows.json")
    scores: dict[str, list[FileScore]] = {STANDARD.name: [], LOW_FP.name: []}
    for name in SERIES:
        key = f"realTweets/{name}.csv"
        texts, _ = read_series(nab / key)
        alerts = _detect(nab / key, capsys)
        assert set(alerts) <= set(texts)  # bucket timestamps in the series' own format
        times = [parse_time(t) for t in texts]
        for profile in (STANDARD, LOW_FP):
            scores[profile.name].append(score_file(times, [parse_time(a) for a in alerts], windows[key], profile))
    standard = normalised(scores[STANDARD.name], STANDARD)
    low_fp = normalised(scores[LOW_FP.name], LOW_FP)
    assert not math.isnan(standard)
    assert standard >= 70.0, scores
    assert low_fp >= 55.0, scores
