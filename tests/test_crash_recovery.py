"""SIGKILL the classify worker mid-stream, restart it: every raw item ends up scored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finsentinel.bus.local import LocalBus
from finsentinel.schema import RawItem, content_id
from tests.tiny_model import make_tiny_model_dir

N_ITEMS = 6000
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def raw_items(n: int) -> list[RawItem]:
    items = []
    for i in range(n):
        zh = i % 2 == 1
        title = f"极光汽车第{i}号公告：股价下跌" if zh else f"Aurora Motors update number {i}: shares fall"
        items.append(RawItem(id=content_id(None, title), source="test", title=title, lang="zh" if zh else "en",
                             published_at=T0 + timedelta(seconds=i), fetched_at=T0))
    return items


def cli(cfg: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "finsentinel.cli", "-c", str(cfg), *args]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FINSENTINEL_")}


@pytest.mark.slow
def test_sigkill_classify_then_restart_scores_each_item_once(tmp_path: Path) -> None:
    model_dir = make_tiny_model_dir(tmp_path / "model")
    bus_path, index_path = tmp_path / "bus.sqlite3", tmp_path / "index.sqlite3"
    cfg = tmp_path / "finsentinel.yaml"
    cfg.write_text(
        f"bus:\n  local:\n    path: {bus_path}\n"
        f"nlp:\n  model_dir: {model_dir}\n  batch_size: 8\n  threads: 1\n"
        f"alerting:\n  index:\n    path: {index_path}\n",
        encoding="utf-8",
    )
    items = raw_items(N_ITEMS)
    bus = LocalBus(bus_path)
    for item in items:
        bus.publish("news.raw", item.to_json(), key=item.id.encode())
    bus.flush()

    worker = subprocess.Popen(cli(cfg, "classify"), env=env(), cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    scored = 0
    while scored < 300 and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.05)
        scored = bus.end_offsets(["news.scored"])["news.scored"]
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    stderr = worker.stderr.read().decode() if worker.stderr else ""
    scored_at_kill = bus.end_offsets(["news.scored"])["news.scored"]
    assert 0 < scored_at_kill < N_ITEMS, f"the kill must land mid-stream (scored {scored_at_kill}); {stderr[-2000:]}"

    restart = subprocess.run(cli(cfg, "classify", "--idle-exit", "2"), env=env(), cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert restart.returncode == 0, restart.stderr[-2000:]
    alert = subprocess.run(cli(cfg, "alert", "--idle-exit", "2"), env=env(), cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert alert.returncode == 0, alert.stderr[-2000:]

    from alerting.index.sqlite import SqliteIndex

    index = SqliteIndex(index_path)
    try:
        assert index.count() == N_ITEMS
        assert all(index.get(item.id) is not None for item in items[:: N_ITEMS // 50])
    finally:
        index.close()
    # at-least-once on the bus: the restart may have re-scored the uncommitted tail, never less
    assert bus.end_offsets(["news.scored"])["news.scored"] >= N_ITEMS
    bus.close()


@pytest.mark.slow
def test_sigterm_stops_classify_cleanly_with_its_work_committed(tmp_path: Path) -> None:
    model_dir = make_tiny_model_dir(tmp_path / "model")
    bus_path = tmp_path / "bus.sqlite3"
    cfg = tmp_path / "finsentinel.yaml"
    cfg.write_text(f"bus:\n  local:\n    path: {bus_path}\nnlp:\n  model_dir: {model_dir}\n  batch_size: 8\n"
                   "  threads: 1\n", encoding="utf-8")
    bus = LocalBus(bus_path)
    for item in raw_items(N_ITEMS):
        bus.publish("news.raw", item.to_json(), key=item.id.encode())
    bus.flush()
    worker = subprocess.Popen(cli(cfg, "classify"), env=env(), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while bus.end_offsets(["news.scored"])["news.scored"] < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err[-2000:]
    scored = bus.end_offsets(["news.scored"])["news.scored"]
    assert 0 < scored < N_ITEMS
    committed = bus.consumer("finsentinel-classify", ["news.raw"]).committed()["news.raw"]
    assert committed == scored  # everything published was committed, nothing half-done
    assert f'"consumed": {committed}' in out
    bus.close()
