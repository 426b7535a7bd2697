"""``finsentinel bench ingest``: its JSON, its dedup scores, and that a failed pass is not a result."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finsentinel.cli import main
from finsentinel.errors import SourceError
from finsentinel.schema import RawItem
from ingest import bench, dedup, parse_pool
from ingest.dedup import content_digest, dedup_keys
from ingest.fingerprint import Fingerprinter
from ingest.mappings import mapping_for
from ingest.parse import Options, Skipped, parse_rows
from ingest.sources.files import FileSource


def test_the_bench_prints_its_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = gc.get_threshold()
    assert main(["bench", "ingest", "--json", "--items", "800", "--parse-workers", "0",
                 "--workdir", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["items"] == 800 and result["items_per_s"] > 0 and result["parse_workers"] == 0
    assert result["near_dup_recall"] >= 0.9 and result["near_dup_precision"] >= 0.95
    assert result["published"] + result["exact_duplicates"] + result["near_duplicates"] == 800
    assert result["on_bus"] == result["published"] and gc.get_threshold() == before
    assert list(tmp_path.iterdir()) == []  # the scratch directory is removed


def test_a_failed_pass_is_an_error_not_a_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: FileSource, *args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(FileSource, "fetch", broken)
    with pytest.raises(SourceError, match="replay pass failed"):
        bench.run_bench(50, workdir=tmp_path)


def test_the_wire_format_carries_items_and_fingerprints_unchanged() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    opts = Options("r", UTC, "auto", now, 20_000, timedelta(days=1))
    body = "贵州茅台今日公告称，公司第一季度营业收入同比增长百分之十八，净利润增长百分之十五，好于市场预期。"
    lines = [json.dumps({"title": "贵州茅台一季度业绩", "body": body, "url": "https://a.example/1",
                         "published_at": "2026-03-01T08:00:00+08:00"}, ensure_ascii=False),
             "{not json", json.dumps({"title": "short", "published_at": "2026-03-01T00:00:00Z"})]
    wires = parse_pool.parse_part(lines, mapping=mapping_for("replay"), opts=opts, fingerprint=(48, 16, 24))
    decoded = [parse_pool.decode(w) for w in wires]
    item, fp = decoded[0]
    [expected] = parse_rows([json.loads(lines[0])], mapping_for("replay"), opts)
    assert item == expected and isinstance(item, RawItem) and item.to_json() == expected.to_json()
    dedup._KEYS.clear()
    assert dedup_keys(item) == ("id:" + item.id, "text:" + content_digest(item.title, item.body))
    parse_pool.decode(wires[0])  # the parse process's digest is the one dedup uses
    assert dedup._KEYS[(item.id, item.title, item.body)] == dedup_keys(expected)
    made = Fingerprinter(48, 16, 24).fingerprint(item.title, item.body, item.lang, item.entity_hints,
                                                 item.published_at.timestamp())
    assert fp is not None and not isinstance(fp, str) and made is not None
    assert (fp.signature == made.signature).all() and fp.bands == made.bands and fp.title == made.title
    assert fp.facts == made.facts == "1|"  # a title's facts travel too (near-dup's guard needs them)
    assert isinstance(decoded[1][0], Skipped) and decoded[1][0].reason == "bad_json"
    assert decoded[2][1] is None  # too short for a fingerprint: None, not "not made"
