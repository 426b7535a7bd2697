"""`finsentinel demo` end to end with the real default model: the Done-when of the foundation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finsentinel.cli import main


def run_demo(tmp_path: Path, seed_model: Path, capsys: pytest.CaptureFixture[str], workspace: Path) -> dict:
    cfg = tmp_path / "finsentinel.yaml"
    # reference_models off: the seed model, whether or not `make model` has run in this checkout
    cfg.write_text(f"nlp:\n  model_dir: {seed_model}\n  reference_models: false\nlog_level: WARNING\n", encoding="utf-8")
    assert main(["-c", str(cfg), "demo", "--json", "--workspace", str(workspace)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_demo_alerts_on_the_bad_news_company_only_and_repeats(
    tmp_path: Path, seed_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / "ws"
    first = run_demo(tmp_path, seed_model, capsys, workspace)
    assert first["ingested"] >= 300 and first["duplicates"] > 0
    assert first["classified"] == first["indexed"] == first["ingested"]
    assert set(first["by_lang"]) == {"en", "zh"}
    entities = [a["entity"] for a in first["alerts"]]
    assert entities == ["aurora-motors"], first["alerts"]
    alert = first["alerts"][0]
    assert alert["start"] <= "2026-03-03T11:00"  # within 2 hourly buckets of the 09:00 episode start
    assert alert["observed"] > alert["expected"] and alert["headlines"] and alert["topic"]
    second = run_demo(tmp_path, seed_model, capsys, workspace)  # a clean workspace each run
    for key in ("ingested", "duplicates", "classified", "indexed", "alerts"):
        assert second[key] == first[key]


def test_demo_refuses_to_wipe_a_foreign_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from finsentinel.demo import _fresh_workspace
    from finsentinel.errors import ConfigError

    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ConfigError, match="was not made by the demo"):
        _fresh_workspace(precious)
    assert (precious / "notes.txt").exists()
