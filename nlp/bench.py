"""``finsentinel bench classify``: the inference engine's throughput and latency, and its overhead
against a bare ONNX Runtime (or PyTorch) run of exactly the same padded batches.

Throughput run (``docs_per_s``): the classify worker's path, ``engine.classify`` on consecutive
chunks of ``max_batch * pool`` texts (a worker's poll hands the engine a list of items). Stream run
(``stream_docs_per_s``): one text per request submitted to the engine's dynamic batcher, with at
most ``2 * max_batch * pool`` texts in flight (many small callers; it adds a future, a queue hop
and a callback per text, and the producer thread competes with the backend for the cores).
Latency run: texts arrive one by one at half the stream run's throughput (a steady stream the
engine can keep up with); ``p50_ms``/``p99_ms`` are its submit-to-result times, which include the
wait for batch mates (at most ``max_wait_ms``) and the batch's own run time. The batches of the
throughput run are recorded and then replayed through a fresh bare session (no tokenising,
bucketing, batching threads or result objects): ``ratio = docs_per_s / bare_docs_per_s`` is the share of the backend's own speed that
the engine keeps. Each side is run ``repeat`` times and the fastest run counts (CPU timings on a
shared machine are noisy; the fastest run is the least disturbed one). For an ensemble every
member's network runs on each text; the bare side replays each member's batches through its own
session, one after the other (``networks`` says how many), and the batch figures are the first
member's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp.engine import Backend, InferenceEngine, PaddedBatch, make_runner
from nlp.ensemble import EnsembleEngine, open_engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    """What to run: backend, engine bounds, threads (0 = library default), repetitions."""

    backend: Backend = "onnx-int8"
    max_batch: int = 64
    max_wait_ms: float = 5.0
    threads: int = 0
    repeat: int = 3
    max_length: int | None = None
    pool: int = 16
    latency_texts: int = 1000


def _stream(engine: InferenceEngine, texts: Sequence[str], in_flight: int) -> tuple[float, list[float]]:
    """Submit one text per request with at most ``in_flight`` outstanding; (seconds, latencies in s)."""
    gate = threading.Semaphore(in_flight)
    latencies = [0.0] * len(texts)
    done = threading.Event()
    remaining = [len(texts)]
    lock = threading.Lock()

    def finished(index: int, submitted: float) -> Any:
        def callback(future: Future[Any]) -> None:
            latencies[index] = time.perf_counter() - submitted
            gate.release()
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

        return callback

    started = time.perf_counter()
    for i, text in enumerate(texts):
        gate.acquire()
        submitted = time.perf_counter()
        engine.submit([text]).add_done_callback(finished(i, submitted))
    done.wait()
    return time.perf_counter() - started, latencies


def _direct(engine: InferenceEngine, texts: Sequence[str], chunk: int) -> float:
    """Seconds ``engine.classify`` needs for ``texts`` handed over ``chunk`` at a time."""
    started = time.perf_counter()
    for i in range(0, len(texts), chunk):
        engine.classify(texts[i:i + chunk])
    return time.perf_counter() - started


def _paced(engine: InferenceEngine, texts: Sequence[str], rate: float) -> list[float]:
    """Submit one text every ``1 / rate`` seconds; the submit-to-result latencies in seconds."""
    latencies = [0.0] * len(texts)
    futures = []
    started = time.perf_counter()
    for i, text in enumerate(texts):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        submitted = time.perf_counter()
        future = engine.submit([text])

        def record(f: Future[Any], i: int = i, submitted: float = submitted) -> None:
            latencies[i] = time.perf_counter() - submitted

        future.add_done_callback(record)
        futures.append(future)
    for future in futures:
        future.result()
    return latencies


def _bare(model_dir: Path, backend: Backend, threads: int, batches: Sequence[PaddedBatch]) -> float:
    """Seconds a bare runner (fresh session / model) needs for the recorded batches."""
    runner = make_runner(model_dir, backend, threads)
    session = getattr(runner, "session", None)
    arrays = [b.arrays for b in batches]
    if session is not None:
        names = [i.name for i in session.get_inputs()]
        feeds = [{n: a[n] for n in names} for a in arrays]
        session.run(None, feeds[0])  # warm-up
        started = time.perf_counter()
        for feed in feeds:
            session.run(None, feed)
        return time.perf_counter() - started
    runner.run(arrays[0])
    started = time.perf_counter()
    for batch in arrays:
        runner.run(batch)
    return time.perf_counter() - started


def bench_classify(model_dir: str | Path, texts: Sequence[str], config: BenchConfig) -> dict[str, Any]:
    """Run the benchmark; the result is the JSON object ``finsentinel bench classify`` prints."""
    path = Path(model_dir)
    engine = open_engine(
        path, config.backend, max_batch=config.max_batch, max_wait_ms=config.max_wait_ms,
        max_length=config.max_length, threads=config.threads, pool=config.pool,
    )
    engine.load()
    # every network that runs records its batches (one per member of an ensemble): the bare side
    # replays each network's own batches through its own fresh session
    leaves = engine.members if isinstance(engine, EnsembleEngine) else [engine]
    recorders: list[list[PaddedBatch]] = [[] for _ in leaves]
    for leaf, recorder in zip(leaves, recorders, strict=True):
        leaf.on_batch = recorder.append
    engine.classify(list(texts[: config.max_batch]))  # warm-up (allocations, lazy graph optimisation)
    best_seconds, best = float("inf"), [list(r) for r in recorders]
    try:
        for _ in range(max(1, config.repeat)):
            for recorder in recorders:
                recorder.clear()
            seconds = _direct(engine, texts, config.max_batch * config.pool)
            if seconds < best_seconds:
                best_seconds, best = seconds, [list(r) for r in recorders]
        stream_seconds = min(_stream(engine, texts, 2 * config.max_batch * config.pool)[0]
                             for _ in range(max(1, config.repeat)))
        latency_rate = 0.5 * len(texts) / stream_seconds
        latencies = _paced(engine, texts[: config.latency_texts], latency_rate)
    finally:
        engine.close()
    pairs = list(zip(leaves, best, strict=True))
    bare_seconds = min(
        sum(_bare(leaf.model_dir, config.backend, config.threads, batches) for leaf, batches in pairs)
        for _ in range(max(1, config.repeat))
    )
    best_batches = best[0]
    sizes = [len(b.positions) for b in best_batches]
    widths = [b.arrays["input_ids"].shape[1] for b in best_batches]
    lat_ms = np.array(latencies) * 1000.0
    docs_per_s = len(texts) / best_seconds
    bare_docs_per_s = len(texts) / bare_seconds
    return {
        "model": engine.version,
        "backend": engine.runner_name,
        "n": len(texts),
        "docs_per_s": round(docs_per_s, 1),
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 2),
        "latency_docs_per_s": round(latency_rate, 1),
        "latency_n": len(latencies),
        "bare_docs_per_s": round(bare_docs_per_s, 1),
        "ratio": round(docs_per_s / bare_docs_per_s, 3),
        "stream_docs_per_s": round(len(texts) / stream_seconds, 1),
        "stream_ratio": round(len(texts) / stream_seconds / bare_docs_per_s, 3),
        "networks": len(leaves),
        "batches": len(best_batches),
        "mean_batch": round(float(np.mean(sizes)), 1) if sizes else 0.0,
        "mean_padded_length": round(float(np.mean(widths)), 1) if widths else 0.0,
        "max_batch": config.max_batch,
        "max_wait_ms": config.max_wait_ms,
        "pool": config.pool,
        "threads": config.threads,
        "repeat": config.repeat,
    }
