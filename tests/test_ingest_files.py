"""File replay sources: JSONL and CSV rows, chunked with a resumable position, paced replay, parse workers."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finsentinel.bus.base import Record
from finsentinel.bus.local import LocalBus
from finsentinel.errors import SourceError
from finsentinel.schema import RawItem
from finsentinel.settings import FileSourceSettings, IngestSettings
from ingest.parse import Skipped
from ingest.sources import files
from ingest.sources.base import Checkpoint
from ingest.sources.files import FileSource
from ingest.syndicate import generate, write_jsonl
from ingest.worker import IngestWorker
from tests.parser_faults import poison_language_detection

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def rows(n: int, start: datetime = T0, step: timedelta = timedelta(minutes=1)) -> list[dict[str, object]]:
    return [{"title": f"Story {i} about Kestrel Cloud", "body": f"Body {i}.", "url": f"https://r.example/{i}",
             "published_at": (start + i * step).isoformat()} for i in range(n)]


def jsonl(path: Path, data: list[dict[str, object]], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in data) + extra, encoding="utf-8")
    return path


def source(path: Path, **kw: object) -> FileSource:
    cfg = FileSourceSettings.model_validate({"name": "replay", "path": path, "format": "jsonl", **kw})
    return FileSource(cfg, IngestSettings())


def titles(results: object) -> list[str]:
    assert isinstance(results, list | tuple)
    return [r.title for r in results if isinstance(r, RawItem)]


def test_jsonl_replay_in_chunks_resumes_from_its_position(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "CHUNK_ROWS", 4)
    path = jsonl(tmp_path / "r.jsonl", rows(10), extra="\n{not json\n[1, 2]\n")
    src = source(path)
    now = datetime.now(UTC)
    first = src.fetch(Checkpoint(), now)
    assert titles(first.results) == [f"Story {i} about Kestrel Cloud" for i in range(4)] and first.more
    assert (first.checkpoint.replay_key, first.checkpoint.position) == (str(path), 4)
    second = src.fetch(first.checkpoint, now)
    third = src.fetch(second.checkpoint, now)
    assert titles(second.results)[0] == "Story 4 about Kestrel Cloud" and len(titles(third.results)) == 2
    assert [r.reason for r in third.results if isinstance(r, Skipped)] == ["bad_json", "bad_entry"]
    assert not third.more and third.checkpoint.replay_key is None and str(path) in third.checkpoint.files
    done = src.fetch(third.checkpoint, now)
    assert list(done.results) == [] and done.not_modified  # unchanged file: nothing to read
    jsonl(path, rows(12))  # the file grew: read again (dedup drops what was published)
    assert len(titles(src.fetch(done.checkpoint, now).results)) == 4


def test_csv_replay_with_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "posts.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["headline", "text", "when", "link", "symbol"])
        writer.writerow(["金海证券获批跨境理财试点", "公司公告称已获监管批准。", "2026-03-02 17:00", "https://c.example/1", "600998.SH"])
        writer.writerow(["", "no title", "2026-03-02 17:05", "https://c.example/2", ""])
    cfg = FileSourceSettings.model_validate({
        "name": "csv", "path": path, "format": "csv", "timezone": "Asia/Shanghai",
        "mapping": {"items": "", "title": "headline", "body": "text", "time": "when", "url": "link", "hints": "symbol"}})
    results = FileSource(cfg, IngestSettings()).fetch(Checkpoint(), datetime.now(UTC)).results
    [item] = [r for r in results if isinstance(r, RawItem)]
    assert item.lang == "zh" and item.published_at == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert item.entity_hints == ("600998.SH",)
    assert [r.reason for r in results if isinstance(r, Skipped)] == ["missing_title"]


def test_csv_row_with_an_oversized_field_is_skipped_not_fatal(tmp_path: Path) -> None:
    # A field over the csv module's limit (131072 characters; also what an unclosed quote that
    # swallows the rest of a file becomes) is one bad row: the rows around it are still replayed.
    path = tmp_path / "posts.csv"
    path.write_text(
        "title,body,published_at\n"
        "First story,short,2026-03-02T09:00:00Z\n"
        f"Huge story,{'x' * 200_000},2026-03-02T09:01:00Z\n"
        "Third story,short,2026-03-02T09:02:00Z\n", encoding="utf-8")
    fetch = source(path, format="csv").fetch(Checkpoint(), datetime.now(UTC))
    assert titles(fetch.results) == ["First story", "Third story"]
    assert [r.reason for r in fetch.results if isinstance(r, Skipped)] == ["bad_csv"]
    assert fetch.checkpoint.replay_key is None and str(path) in fetch.checkpoint.files


def test_jsonl_row_with_a_lone_surrogate_escape_is_replayed(tmp_path: Path) -> None:
    # Text cut at a UTF-16 length leaves half an emoji, written by JSON encoders as "\ud83d"; the
    # standard library decodes it to a lone surrogate, which cannot be hashed or published as UTF-8.
    path = tmp_path / "r.jsonl"
    row = {"title": "Kestrel Cloud to the moon \ud83d", "body": "Buying more \ud83d",
           "url": "https://r.example/1\ud83d", "published_at": "2026-03-02T09:00:00Z"}
    line = json.dumps(row)  # ensure_ascii: the surrogate is written as the escape \ud83d
    assert "\\ud83d" in line
    path.write_text(line + "\n" + json.dumps(rows(1)[0]) + "\n", encoding="utf-8")
    fetch = source(path).fetch(Checkpoint(), datetime.now(UTC))
    got = [r for r in fetch.results if isinstance(r, RawItem)]
    assert [g.title for g in got] == ["Kestrel Cloud to the moon", "Story 0 about Kestrel Cloud"]
    assert got[0].body == "Buying more" and got[0].url == "https://r.example/1"
    assert all(RawItem.from_json(g.to_json()) == g for g in got)


def test_jsonl_rows_the_parser_fails_on_are_skipped_and_the_replay_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    poison_language_detection(monkeypatch)
    data = rows(4)
    data[1]["title"] = "A poison pill"
    data[2]["published_at"] = int("9" * 400)  # float() of it raises OverflowError
    huge = '{"title": "Huge", "published_at": 1' + "0" * 5000 + "}"  # over the 4300-digit int limit: ValueError
    path = jsonl(tmp_path / "r.jsonl", data, extra=huge + "\n")
    fetch = source(path).fetch(Checkpoint(), datetime.now(UTC))
    assert titles(fetch.results) == ["Story 0 about Kestrel Cloud", "Story 3 about Kestrel Cloud"]
    assert [r.reason for r in fetch.results if isinstance(r, Skipped)] == ["bad_entry", "bad_date", "bad_json"]
    assert fetch.checkpoint.replay_key is None and str(path) in fetch.checkpoint.files


def test_parse_part_turns_a_row_that_fails_into_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a parse worker process runs for a parallel replay, here in this process.
    from ingest import parse_pool

    real = parse_pool.content_digest

    def digest(title: str, body: str) -> object:
        if title == "Story 1 about Kestrel Cloud":
            raise RuntimeError("digest bug")
        return real(title, body)

    monkeypatch.setattr(parse_pool, "content_digest", digest)
    src = source(Path("unused.jsonl"))
    raws: list[str | dict[str, object] | Skipped] = [json.dumps(r) for r in rows(3)]
    raws.append('{"title": "Huge", "published_at": 1' + "0" * 5000 + "}")
    wires = parse_pool.parse_part(raws, mapping=src.mapping, opts=src._options(datetime.now(UTC)), fingerprint=None)
    results = [parse_pool.decode(w)[0] for w in wires]
    assert titles(results) == ["Story 0 about Kestrel Cloud", "Story 2 about Kestrel Cloud"]
    skipped = [r for r in results if isinstance(r, Skipped)]
    assert [r.reason for r in skipped] == ["bad_entry", "bad_json"] and "RuntimeError: digest bug" in skipped[0].excerpt


def test_paced_replay_follows_publication_times(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "r.jsonl", rows(6, step=timedelta(minutes=10)))
    src = source(path, speed=60.0)  # 10 minutes of stream per 10 seconds
    start = datetime(2026, 6, 1, tzinfo=UTC)
    first = src.fetch(Checkpoint(), start)
    assert titles(first.results) == ["Story 0 about Kestrel Cloud"] and not first.more
    later = src.fetch(first.checkpoint, start + timedelta(seconds=25))
    assert titles(later.results) == ["Story 1 about Kestrel Cloud", "Story 2 about Kestrel Cloud"]
    idle = src.fetch(later.checkpoint, start + timedelta(seconds=26))
    assert list(idle.results) == [] and idle.not_modified
    rest = src.fetch(idle.checkpoint, start + timedelta(seconds=60))
    assert len(titles(rest.results)) == 3 and rest.checkpoint.replay_key is None


def test_missing_path_fails_the_fetch(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        source(tmp_path / "nope.jsonl").fetch(Checkpoint(), datetime.now(UTC))


def test_directory_of_jsonl_files_is_read_in_name_order(tmp_path: Path) -> None:
    jsonl(tmp_path / "b.jsonl", rows(2, start=T0 + timedelta(hours=1)))
    jsonl(tmp_path / "a.jsonl", rows(1))
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    src = source(tmp_path)
    now = datetime.now(UTC)
    first = src.fetch(Checkpoint(), now)
    second = src.fetch(first.checkpoint, now)
    assert len(titles(first.results)) == 1 and first.more and len(titles(second.results)) == 2 and not second.more


def test_a_file_deleted_after_the_listing_is_skipped_this_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    jsonl(tmp_path / "a.jsonl", rows(1))
    jsonl(tmp_path / "b.jsonl", rows(2, start=T0 + timedelta(hours=1)))
    src = source(tmp_path)
    listed = src._files

    def list_then_delete() -> list[Path]:
        found = listed()
        (tmp_path / "a.jsonl").unlink(missing_ok=True)  # gone between the listing and the stat
        return found

    monkeypatch.setattr(src, "_files", list_then_delete)
    with caplog.at_level("INFO", logger="ingest.sources.files"):
        fetch = src.fetch(Checkpoint(), datetime.now(UTC))
    assert len(titles(fetch.results)) == 2 and not fetch.more
    assert str(tmp_path / "a.jsonl") not in fetch.checkpoint.files and str(tmp_path / "b.jsonl") in fetch.checkpoint.files
    assert any("vanished" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_parse_workers_give_the_same_result(tmp_path: Path) -> None:
    stream = generate(1200, seed=3)
    path = write_jsonl(stream, tmp_path / "s.jsonl")
    outcomes = []
    for workers in (0, 2):
        cfg = IngestSettings(sources=[FileSourceSettings(name="r", path=path, format="jsonl", parse_workers=workers)],
                             state_path=tmp_path / f"state-{workers}.db")
        bus = LocalBus(tmp_path / f"bus-{workers}.db")
        worker = IngestWorker(cfg, bus, "raw")
        try:
            stats = worker.run_once()
        finally:
            worker.close()
        # What was published, field by field, except the fetch time (differs between the passes) and the
        # copies (a copy within a batch of the original counts on it, a repeat in a later batch of a
        # re-read entry does not: the two passes cut their batches differently).
        published = [{k: v for k, v in json.loads(r.value).items() if k not in ("fetched_at", "copies")}
                     for r in _read(bus)]
        outcomes.append((stats.published, stats.duplicates, stats.near_duplicates, published))
    assert outcomes[0] == outcomes[1] and outcomes[0][2] > 0


@pytest.mark.slow
def test_parallel_replay_reads_chunks_in_order_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "CHUNK_ROWS", 5)
    path = jsonl(tmp_path / "r.jsonl", rows(12)[:6], extra="\n  \n" + "".join(json.dumps(r) + "\n" for r in rows(12)[6:]))
    src = source(path, parse_workers=1)
    now, checkpoint, got, sizes = datetime.now(UTC), Checkpoint(), [], []
    try:
        while True:
            fetched = src.fetch(checkpoint, now)
            got += titles(fetched.results)
            sizes.append(len(fetched.results))
            checkpoint = fetched.checkpoint
            if len(sizes) == 2:  # a restarted worker: a new source resumes from the checkpoint alone
                src.close()
                src = source(path, parse_workers=1)
            if not fetched.more:
                break
    finally:
        src.close()
    assert got == [f"Story {i} about Kestrel Cloud" for i in range(12)]
    assert sizes == [1, 2, 1, 2, 4, 2]  # small first chunks (after a restart too), growing to CHUNK_ROWS
    assert checkpoint.replay_key is None and str(path) in checkpoint.files


def _read(bus: LocalBus) -> list[Record]:
    consumer = bus.consumer("reader", ["raw"])
    out: list[Record] = []
    while batch := consumer.poll(1000, 0.05):
        out += batch
    return out


@pytest.mark.slow
def test_warm_starts_every_parse_worker_before_the_first_fetch(tmp_path: Path) -> None:
    path = write_jsonl(generate(50, seed=4), tmp_path / "s.jsonl")
    src = FileSource(FileSourceSettings(name="r", path=path, format="jsonl", parse_workers=2), IngestSettings())
    try:
        src.warm()
        assert src._executor is not None and len(src._executor._processes) == 2
        fetched = src.fetch(Checkpoint(), datetime.now(UTC))
        assert len(fetched.results) == 50 and len(fetched.fingerprints) > 0
    finally:
        src.close()


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return not stat.parent.parent.is_dir()  # no /proc: os.kill said it is there


def test_parse_workers_end_when_the_ingest_process_is_killed(tmp_path: Path) -> None:
    """SIGKILL skips the pool's shutdown: its workers must not outlive the ingest process (each holds its models)."""
    path = jsonl(tmp_path / "r.jsonl", rows(5))
    script = (
        "import time\n"
        "from ingest import parse_pool\n"
        "from ingest.sources.files import FileSource\n"
        "from finsentinel.settings import FileSourceSettings, IngestSettings\n"
        f"src = FileSource(FileSourceSettings(name='r', path={str(path)!r}, format='jsonl', parse_workers=1), "
        "IngestSettings())\n"
        "src.warm()\n"
        "print(src._pool().submit(parse_pool.process_id).result(), flush=True)\n"
        "time.sleep(600)\n"
    )
    ingest = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        assert ingest.stdout is not None
        worker = int(ingest.stdout.readline())
        assert _running(worker)
    finally:
        ingest.kill()
        ingest.wait(timeout=30)
    deadline = time.monotonic() + 20
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _running(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the parse worker outlived the killed ingest process"


def test_a_stopping_worker_ends_a_replay_run_after_the_chunk_in_hand(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM stops the scheduled worker "after the current batch": a run of a long backfill ends once the
    chunk in hand is published and its position saved, not when the file is drained; a restart resumes."""
    monkeypatch.setattr(files, "CHUNK_ROWS", 4)
    path = jsonl(tmp_path / "r.jsonl", rows(10))
    cfg = IngestSettings(sources=[FileSourceSettings(name="r", path=path, format="jsonl")],
                         state_path=tmp_path / "state.db")
    bus = LocalBus(tmp_path / "bus.db")
    worker = IngestWorker(cfg, bus, "raw")
    try:
        worker.http.stop.set()  # what run_forever does when the stop event is set
        assert worker.run_source(worker.sources[0]).published == 4
    finally:
        worker.close()
    worker = IngestWorker(cfg, bus, "raw")
    try:
        assert worker.run_once().published == 6
    finally:
        worker.close()
    assert len(_read(bus)) == 10
