"""``finsentinel bench ingest``: replay a generated syndicated stream from JSONL into the local bus.

The stream (:mod:`ingest.syndicate`, English and Chinese, about two thirds syndicated copies) is
written to a scratch directory first (not timed; the language and script-conversion models are
loaded then too, as a long-running worker loads them once); then one ingest pass reads it as a
``jsonl`` file source with language detection on, exact and near-duplicate dedup on, and publishes
into a local SQLite bus. Throughput is items read per wall-clock second of that pass (``items_per_cpu_s``
divides by the process CPU time instead, which a busy machine distorts less); recall and
precision compare what dedup dropped with the generator's ground truth.
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from finsentinel.bus.local import LocalBus
from finsentinel.errors import SourceError
from finsentinel.schema import RawItem
from finsentinel.settings import FileSourceSettings, IngestSettings
from finsentinel.worker import tune_gc
from ingest.syndicate import evaluate, generate, write_jsonl
from ingest.worker import IngestWorker

TOPIC = "news.raw"


def run_bench(items: int = 50_000, seed: int = 7, workdir: Path | None = None,
              settings: IngestSettings | None = None, parse_workers: int = 0) -> dict[str, Any]:
    """Run the benchmark; return its JSON-ready result."""
    scratch = Path(tempfile.mkdtemp(prefix="finsentinel-bench-", dir=workdir))
    try:
        stream = generate(items, seed=seed)
        path = write_jsonl(stream, scratch / "stream.jsonl")
        source = FileSourceSettings(name="replay", path=path, format="jsonl", lang="auto",
                                    parse_workers=parse_workers)
        base = settings or IngestSettings()
        cfg = base.model_copy(update={"sources": [source], "state_path": scratch / "ingest.sqlite3"})
        decisions: dict[str, str] = {}
        kinds = {"exact": 0, "near": 0}

        def record(item: RawItem, original: str, kind: str) -> None:
            decisions[item.url or item.id] = original
            kinds[kind] += 1

        bus = LocalBus(scratch / "bus.sqlite3")
        worker = IngestWorker(cfg, bus, TOPIC, on_duplicate=record)
        thresholds = gc.get_threshold()
        try:
            worker.warm()  # one-off loads (models, parse processes) of a long-running worker, not timed
            tune_gc()  # as the ingest entry point does
            wall, cpu = time.perf_counter(), time.process_time()
            stats = worker.run_once()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if stats.errors or stats.fetched != len(stream):
                raise SourceError(f"bench ingest: the replay pass failed ({stats.errors} fetch errors, "
                                  f"{stats.fetched} of {len(stream)} rows read); see the log above")
            on_bus = bus.end_offsets([TOPIC])[TOPIC]
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            worker.close()
            bus.close()
        score = evaluate(stream, decisions)
        return {
            "items": len(stream),
            "seconds": round(wall, 2),
            "items_per_s": round(len(stream) / wall, 1),
            "cpu_seconds": round(cpu, 2),
            "items_per_cpu_s": round(len(stream) / cpu, 1) if cpu and not parse_workers else None,
            "parse_workers": parse_workers,
            "near_dup_recall": score.recall,
            "near_dup_precision": score.precision,
            "rewrite_recall": score.rewrite_recall,
            "copies_in_stream": score.copies,
            "published": stats.published,
            "on_bus": on_bus,
            "exact_duplicates": kinds["exact"],
            "near_duplicates": kinds["near"],
            "skipped": stats.skipped,
            "by_lang": stats.by_lang,
            "near_dup": cfg.near_dup.model_dump(),
            "machine": {"cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2),
                        "python": platform.python_version()},
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
