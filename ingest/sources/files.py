"""File and directory sources: RSS/Atom XML and JSON API responses read whole, JSONL and CSV replayed.

``rss``/``json`` files are re-read when their size or modification time changes (dedup drops the
entries already published). ``jsonl``/``csv`` files are replayed row by row from the checkpoint's
position, at most :data:`CHUNK_ROWS` rows per fetch, as fast as possible (``speed: 0``) or paced by
the items' publication times (``speed: 1`` real time, ``speed: N`` N times faster), which backfills
a history into a running pipeline as if it were live. With ``parse_workers: N`` a full-speed
replay parses rows (and makes their near-dup fingerprints) in N worker processes, keeping order.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

from finsentinel.errors import SourceError
from finsentinel.schema import RawItem
from finsentinel.settings import FileSourceSettings, IngestSettings
from ingest import parse_pool
from ingest.fingerprint import Fingerprint
from ingest.mappings import JsonMapping, mapping_for
from ingest.normalize import resolve_tz
from ingest.parse import Options, Skipped, parse_json_api, parse_rows, parse_rss
from ingest.sources.base import Checkpoint, Fetch

log = logging.getLogger(__name__)

SUFFIXES = {
    "rss": frozenset({".xml", ".rss", ".atom"}), "json": frozenset({".json"}), "jsonl": frozenset({".jsonl", ".ndjson"}),
    "csv": frozenset({".csv"}),
}
CHUNK_ROWS = 5000
AHEAD = 2  # chunks a parallel replay keeps in its parse workers while the last one is published

Result = RawItem | Skipped
RawRow = str | dict[str, object] | Skipped  # a JSONL line, a CSV row, or a row the csv module refused


@dataclass
class _Chunk:
    results: list[Result] = field(default_factory=list)
    fingerprints: dict[str, Fingerprint | None] = field(default_factory=dict)
    consumed: int = 0
    exhausted: bool = True
    origin: float | None = None  # wall-clock time the paced replay started
    start: str | None = None  # publication time of its first item (ISO 8601)


class FileSource:
    """A file or a directory of files of one format (see the module doc)."""

    def __init__(self, cfg: FileSourceSettings, ingest: IngestSettings) -> None:
        self.name, self.cfg = cfg.name, cfg
        self.tz = resolve_tz(cfg.timezone)
        self.max_body = ingest.max_body_chars
        self.max_future = timedelta(seconds=ingest.max_future_s)
        default = "newsapi" if cfg.format == "json" else "replay"
        self.mapping: JsonMapping = mapping_for(cfg.mapping if cfg.mapping is not None else default)
        nd = ingest.near_dup
        self.fingerprint_params = (nd.num_perm, nd.bands, nd.min_shingles) if nd.enabled else None
        self._executor: ProcessPoolExecutor | None = None
        self._pending: list[_Pending] = []  # chunks submitted to the parse workers, in file order
        # Where the last parallel read of a JSONL file stopped: ((file, inode, next row), stream position).
        self._resume: tuple[tuple[str, int, int], int] | None = None

    def fetch(self, checkpoint: Checkpoint, now: datetime) -> Fetch:
        """Changed rss/json files, or the next chunk of due jsonl/csv rows."""
        files = self._files()
        if self.cfg.format in ("jsonl", "csv"):
            return self._replay(files, checkpoint, now)
        return self._whole_files(files, checkpoint, now)

    def close(self) -> None:
        """Stop the parse worker processes, if any (files are opened and closed within a fetch)."""
        self._pending, self._resume = [], None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _files(self) -> list[Path]:
        path = self.cfg.path
        if path.is_file():
            return [path]
        if not path.is_dir():
            raise SourceError(f"source {self.name}: {path} does not exist; expected a file or a directory "
                              f"of {self.cfg.format} files (check ingest.sources[].path)")
        suffixes = SUFFIXES[self.cfg.format]
        return sorted(p for p in path.rglob("*")
                      if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))

    def _options(self, now: datetime) -> Options:
        return Options(self.name, self.tz, self.cfg.lang, now, self.max_body, self.max_future)

    def _whole_files(self, files: list[Path], checkpoint: Checkpoint, now: datetime) -> Fetch:
        results: list[Result] = []
        done = dict(checkpoint.files)
        read = unchanged = 0
        for file in files:
            try:
                stat = file.stat()
                state = (stat.st_mtime_ns, stat.st_size)
                if done.get(str(file)) == state:
                    unchanged += 1
                    continue
                data = file.read_bytes()
                results.extend(self._parse(data, now))
            except OSError as exc:
                log.warning("source %s: cannot read %s: %s", self.name, file, exc)
                results.append(Skipped(self.name, "unreadable", f"{file}: {exc}"))
                continue
            except Exception as exc:  # one bad file must not stop the others; the traceback is logged
                log.exception("source %s: parsing %s failed", self.name, file)
                results.append(Skipped(self.name, "parse_error", f"{file}: {exc}"[:200]))
                continue
            done[str(file)] = state
            read += 1
        return Fetch(results, replace(checkpoint, files=done, since=now.timestamp()), files_read=read,
                     files_unchanged=unchanged, not_modified=read == 0 and not results)

    def _parse(self, data: bytes, now: datetime) -> list[Result]:
        opts = self._options(now)
        if self.cfg.format == "rss":
            return parse_rss(data, self.name, self.tz, lang=self.cfg.lang, fetched_at=now,
                             max_body_chars=self.max_body, max_future=self.max_future)
        return parse_json_api(data, self.name, self.mapping, self.tz, lang=opts.lang, fetched_at=now,
                              max_body_chars=self.max_body, max_future=self.max_future)

    def _replay(self, files: list[Path], checkpoint: Checkpoint, now: datetime) -> Fetch:
        done = dict(checkpoint.files)
        for file in files:
            try:
                stat = file.stat()
            except FileNotFoundError:  # deleted (or renamed away) since the directory was listed
                log.info("source %s: %s vanished before it could be read; skipping it this round", self.name, file)
                continue
            except OSError as exc:
                raise SourceError(f"source {self.name}: cannot read {file}: {exc}") from exc
            state = (stat.st_mtime_ns, stat.st_size)
            if done.get(str(file)) == state:
                continue
            position = checkpoint.position if checkpoint.replay_key == str(file) else 0
            if self.cfg.parse_workers and not self.cfg.speed:
                chunk = self._replay_parallel(file, position, now)
            else:
                chunk = self._replay_chunk(file, position, checkpoint, now)
            cp = replace(checkpoint, replay_key=str(file), position=position + chunk.consumed,
                         replay_origin=chunk.origin, cursor=chunk.start, since=now.timestamp())
            if chunk.exhausted:
                done[str(file)] = state
                cp = replace(cp, files=done, replay_key=None, position=0)
            full = not chunk.exhausted if self.cfg.parse_workers and not self.cfg.speed else chunk.consumed == CHUNK_ROWS
            more = full and not chunk.exhausted or chunk.exhausted and file != files[-1]
            return Fetch(chunk.results, cp, more=more, files_read=1, not_modified=not chunk.results,
                         fingerprints=chunk.fingerprints)
        return Fetch([], replace(checkpoint, files=done, since=now.timestamp()), files_unchanged=len(files),
                     not_modified=True)

    def _replay_chunk(self, file: Path, position: int, checkpoint: Checkpoint, now: datetime) -> _Chunk:
        """Up to CHUNK_ROWS due results of ``file`` after row ``position``."""
        opts = self._options(now)
        speed = self.cfg.speed
        origin = checkpoint.replay_origin if speed else None
        start = datetime.fromisoformat(checkpoint.cursor) if speed and checkpoint.cursor else None
        chunk = _Chunk()
        try:
            with file.open("r", encoding="utf-8", errors="replace", newline="") as handle:
                rows = islice(self._rows(handle), position, None)
                for row in rows:
                    [result] = parse_rows([row], self.mapping, opts) if isinstance(row, dict) else [row]
                    if speed and isinstance(result, RawItem):
                        if start is None or origin is None:
                            start, origin = result.published_at, now.timestamp()
                        due = origin + (result.published_at - start).total_seconds() / speed
                        if due > now.timestamp():
                            return replace(chunk, exhausted=False, origin=origin, start=start.isoformat())
                    chunk.results.append(result)
                    chunk.consumed += 1
                    if chunk.consumed == CHUNK_ROWS:
                        chunk.exhausted = next(rows, None) is None
                        break
        except OSError as exc:
            raise SourceError(f"source {self.name}: cannot read {file}: {exc}") from exc
        return replace(chunk, origin=origin, start=start.isoformat() if start else None)

    def _rows(self, handle: io.TextIOBase) -> Iterator[dict[str, object] | Skipped]:
        for raw in _raw_rows(handle, self.cfg.format == "jsonl", self.name):
            yield parse_pool.decode_row(raw, self.name) if isinstance(raw, str) else raw

    def warm(self) -> None:
        """Start the parse worker processes and load their models now rather than on the first fetch."""
        if self.cfg.parse_workers and self.cfg.format in ("jsonl", "csv") and not self.cfg.speed:
            pool, started = self._pool(), set[int]()
            deadline = time.monotonic() + 120
            # Workers are spawned on demand and warm themselves (the pool's initializer) before
            # their first job: wait until every one has answered.
            while len(started) < self.cfg.parse_workers and time.monotonic() < deadline:
                jobs = [pool.submit(parse_pool.process_id) for _ in range(self.cfg.parse_workers)]
                started.update(job.result() for job in jobs)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the worker process has scheduler and HTTP threads a fork would copy mid-state
            self._executor = ProcessPoolExecutor(self.cfg.parse_workers, mp_context=mp.get_context("spawn"),
                                                 initializer=parse_pool.warm,
                                                 initargs=(self.fingerprint_params, os.getpid()))
        return self._executor

    def _replay_parallel(self, file: Path, position: int, now: datetime) -> _Chunk:
        """Like :meth:`_replay_chunk` at full speed, with rows parsed (and fingerprinted) in worker processes.

        While the caller publishes this chunk, the workers parse the next :data:`AHEAD` ones.
        """
        queue = self._pending if self._pending and self._pending[0].key == (str(file), position) else []
        if not queue:
            # Nothing parsed ahead: a small first chunk, so this process is not idle long waiting for it.
            queue = [self._submit(file, position, now, max(1, CHUNK_ROWS // 5))]
        pending = queue.pop(0)
        chunk = _Chunk(consumed=pending.rows, exhausted=pending.exhausted)
        for future in pending.futures:
            for wire in future.result():
                result, fp = parse_pool.decode(wire)
                chunk.results.append(result)
                if not isinstance(fp, str) and isinstance(result, RawItem):
                    chunk.fingerprints[result.id] = fp
        last = queue[-1] if queue else pending
        while len(queue) < AHEAD and not last.exhausted:  # chunks grow to CHUNK_ROWS
            last = self._submit(file, last.key[1] + last.rows, now, min(CHUNK_ROWS, 2 * last.rows))
            queue.append(last)
        self._pending = queue
        return chunk

    def _submit(self, file: Path, position: int, now: datetime, rows: int = CHUNK_ROWS) -> _Pending:
        try:
            if self.cfg.format == "jsonl":
                raws, exhausted = self._read_lines(file, position, rows)
            else:
                with file.open("r", encoding="utf-8", errors="replace", newline="") as handle:
                    after = islice(_raw_rows(handle, False, self.name), position, None)
                    raws = list(islice(after, rows))
                    exhausted = len(raws) < rows or next(after, None) is None
        except OSError as exc:
            raise SourceError(f"source {self.name}: cannot read {file}: {exc}") from exc
        size = max(1, -(-len(raws) // (4 * self.cfg.parse_workers)))
        job = functools.partial(parse_pool.parse_part, mapping=self.mapping, opts=self._options(now),
                                fingerprint=self.fingerprint_params)
        pool = self._pool()
        futures = [pool.submit(job, raws[i:i + size]) for i in range(0, len(raws), size)]
        return _Pending((str(file), position), futures, len(raws), exhausted)

    def _read_lines(self, file: Path, position: int, rows: int) -> tuple[list[RawRow], bool]:
        """Up to ``rows`` non-blank lines of a JSONL file after row ``position``; and whether the file ends there.

        The stream position where a read stopped is kept, so the next chunk continues from there
        instead of skipping ``position`` rows again (which made a replay quadratic in its length).
        """
        key = (str(file), file.stat().st_ino, position)
        with file.open("r", encoding="utf-8", errors="replace", newline="") as handle:
            skip = position
            if self._resume is not None and self._resume[0] == key:
                handle.seek(self._resume[1])
                skip = 0
            raws: list[RawRow] = []
            readline = handle.readline
            while len(raws) < rows and (line := readline()):
                if not line.strip():
                    continue
                if skip:
                    skip -= 1
                else:
                    raws.append(line)
            stop = handle.tell()
            exhausted = True
            while line := readline():
                if line.strip():
                    exhausted = False
                    break
        self._resume = ((key[0], key[1], position + len(raws)), stop)
        return raws, exhausted


@dataclass(frozen=True)
class _Pending:
    key: tuple[str, int]  # (file, first row)
    futures: list[Future[list[parse_pool.Wire]]]
    rows: int
    exhausted: bool


def _raw_rows(handle: io.TextIOBase, jsonl: bool, source: str) -> Iterator[RawRow]:
    """Non-blank JSONL lines, or CSV rows as dicts (a row the csv module refuses: a Skipped)."""
    if not jsonl:
        reader = csv.DictReader(handle)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. a field over csv.field_size_limit(); the reader goes on at the next line
                yield Skipped(source, "bad_csv", f"line {reader.line_num}: {exc}")
                continue
            yield row
    for line in handle:
        if line.strip():
            yield line
