"""``finsentinel bench index`` / ``detect`` / ``dashboard``: the generated documents and the one-JSON-object output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerting.bench import news_items
from finsentinel.cli import main


def test_bench_documents_are_news_sized_bilingual_and_reproducible() -> None:
    items = news_items(200)
    assert items == news_items(200)
    assert len({i.id for i in items}) == 200
    assert {i.lang for i in items} == {"en", "zh"}
    sizes = [len(i.title) + len(i.body) for i in items]
    assert min(sizes) >= 300 and 1000 <= sum(sizes) / len(sizes) <= 2500
    assert all(1 <= len(i.entities) <= 3 for i in items)


def test_bench_index_prints_one_json_object(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "index", "--json", "--docs", "600", "--batch", "250"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["backend"] == "sqlite" and result["docs"] == 600 and result["stored"] == 600
    assert result["docs_per_s"] > 0 and result["batch"] == 250
    assert list(tmp_path.iterdir()) == []  # the temporary index is removed


def test_bench_detect_prints_one_json_object(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "detect", "--json", "--history", "3000", "--batch", "100", "--runs", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["history"], result["batch"], result["runs"]) == (3000, 100, 2)
    assert 0 < result["run_s"] <= result["max_run_s"] and result["full_rerun_s"] > 0
    assert result["speedup"] == pytest.approx(result["full_rerun_s"] / result["run_s"], rel=0.1)
    assert list(tmp_path.iterdir()) == []
    assert main(["bench", "detect", "--runs", "0"]) == 2
    assert "expected --runs >= 1, got 0" in capsys.readouterr().err


def test_bench_dashboard_prints_one_json_object(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert {e for i in news_items(300, companies=50) for e in i.entities} <= {f"co-{n}" for n in range(50)}
    assert main(["bench", "dashboard", "--json", "--history", "1500", "--companies", "40", "--repeats", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["history"], result["companies"], result["repeats"]) == (1500, 40, 2)
    for name in ("overview_s", "company_series_s", "company_items_s", "search_s", "alerts_s"):
        assert result[name] > 0, name
    assert list(tmp_path.iterdir()) == []
    assert main(["bench", "dashboard", "--companies", "-1"]) == 2
    assert "expected --companies >= 0, got -1" in capsys.readouterr().err


def test_detect_without_json_prints_one_timestamp_per_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rows = ["timestamp,value"] + [f"2015-03-01 {h:02d}:{m:02d}:00,{20 + (h * 7 + m) % 5}"
                                  for h in range(24) for m in range(0, 60, 5)]
    rows[-10] = rows[-10].rsplit(",", 1)[0] + ",900"
    series = tmp_path / "series.csv"
    series.write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "finsentinel.yaml").write_text("alerting:\n  detect:\n    series:\n      warmup_buckets: 24\n")
    assert main(["detect", "--series", str(series)]) == 0
    assert capsys.readouterr().out == rows[-10].split(",")[0] + "\n"
    series.write_text("time,count\n1,2\n", encoding="utf-8")
    assert main(["detect", "--series", str(series)]) == 2
    assert "expected a NAB series with the header 'timestamp,value'" in capsys.readouterr().err
    series.write_text("timestamp,value\n2015-03-01,x\n", encoding="utf-8")
    assert main(["detect", "--series", str(series)]) == 2
    assert "series.csv:2: expected 'YYYY-MM-DD HH:MM:SS,number'" in capsys.readouterr().err
    series.write_text("timestamp,value\n", encoding="utf-8")
    assert main(["detect", "--series", str(series)]) == 2
    assert "after the header, got none" in capsys.readouterr().err


def test_detect_reads_a_series_with_a_byte_order_mark_and_rejects_other_encodings_in_one_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    series = tmp_path / "series.csv"
    series.write_text("timestamp,value\n2015-03-01 00:00:00,3\n", encoding="utf-8-sig")  # Excel's "CSV UTF-8"
    assert main(["detect", "--series", str(series), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"alerts": []}
    series.write_text("timestamp,value\n2015-03-01 00:00:00,3\n", encoding="utf-16")
    assert main(["detect", "--series", str(series)]) == 2
    err = capsys.readouterr().err
    assert "series.csv" in err and "UTF-8" in err and len(err.strip().splitlines()) == 1
