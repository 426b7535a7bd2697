"""The CLI: settings display, and one clear line (exit 2) for every bad start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from finsentinel.cli import main


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENTINEL_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "finsentinel.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120)


def test_config_show_masks_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "f.yaml"
    cfg.write_text("bus:\n  kafka:\n    sasl_password: s3cret\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["-c", str(cfg), "config", "show"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out and "sasl_password: '**********'" in out


def test_bad_settings_file_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "f.yaml"
    cfg.write_text("nlp:\n  batch_size: many\n", encoding="utf-8")
    result = run_cli("-c", str(cfg), "config", "show", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("finsentinel: error: invalid settings file")
    assert "nlp.batch_size" in result.stderr and "Traceback" not in result.stderr


def test_env_override_error_is_named(tmp_path: Path) -> None:
    result = run_cli("config", "show", cwd=tmp_path, env={"FINSENTINEL_BUS__BACKEND": "rabbit"})
    assert result.returncode == 2 and "bus.backend" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_missing_model_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "f.yaml"
    cfg.write_text(f"nlp:\n  model_dir: {tmp_path / 'nope'}\nbus:\n  local:\n    path: {tmp_path / 'bus.db'}\n",
                   encoding="utf-8")
    result = run_cli("-c", str(cfg), "classify", "--idle-exit", "0", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "finsentinel: error:" in result.stderr and "Traceback" not in result.stderr
    assert str(tmp_path / "nope") in result.stderr


@pytest.mark.slow
def test_unreachable_kafka_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "f.yaml"
    cfg.write_text("bus:\n  backend: kafka\n  kafka:\n    bootstrap_servers: 127.0.0.1:9\n"
                   "    request_timeout_ms: 2000\n", encoding="utf-8")
    result = run_cli("-c", str(cfg), "ingest", "--once", "--demo-sources", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("finsentinel: error:") and "127.0.0.1:9" in last
    assert "Traceback" not in result.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("finsentinel ")


def test_ingest_demo_sources_once(tmp_path: Path) -> None:
    cfg = tmp_path / "f.yaml"
    cfg.write_text(f"bus:\n  local:\n    path: {tmp_path / 'bus.db'}\ningest:\n  state_path: {tmp_path / 's.db'}\n",
                   encoding="utf-8")
    first = run_cli("-c", str(cfg), "ingest", "--once", "--demo-sources", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    stats = json.loads(first.stdout)
    assert stats["published"] >= 300
    again = run_cli("-c", str(cfg), "ingest", "--once", "--demo-sources", cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["published"] == 0


def test_ingest_without_sources_is_one_line(tmp_path: Path) -> None:
    result = run_cli("ingest", "--once", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("finsentinel: error: no ingest sources") and "Traceback" not in result.stderr
