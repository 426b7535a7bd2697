"""``finsentinel demo``: the whole pipeline on the bundled feeds, in one process, offline.

Ingest, classify and index run as three threads over the embedded SQLite bus, exactly the
loops the separate workers run; detection runs once the stream is drained. Each run starts
from a clean workspace (the trained model is cached outside it), so runs are repeatable.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from finsentinel.bus.local import LocalBus
from finsentinel.errors import ConfigError
from finsentinel.schema import Alert
from finsentinel.settings import DetectSettings, Settings
from finsentinel.worker import StageWorker

log = logging.getLogger(__name__)

MARKER = ".finsentinel-demo"

# The demo feeds span two days with ~25 items per company per day: hourly buckets, a day of
# warm-up; the rest are the detector's defaults.
DEMO_DETECT = {
    "bucket_minutes": 60, "window_buckets": 3, "min_negative": 5, "p_value": 3e-4, "warmup_buckets": 24,
    "halflife_buckets": 24, "cooldown_buckets": 2, "prior_weight": 30,
}


def _fresh_workspace(path: Path) -> Path:
    """Empty ``path``, refusing to wipe a directory that a demo did not create."""
    if path.exists():
        if any(path.iterdir()) and not (path / MARKER).exists():
            raise ConfigError(
                f"demo workspace {path} exists and was not made by the demo; "
                "choose another with --workspace or remove it yourself"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("scratch space of `finsentinel demo`; wiped on every run\n", encoding="utf-8")
    return path


def _demo_settings(settings: Settings, workspace: Path, model_dir: Path) -> Settings:
    bus = settings.bus.model_copy(update={"backend": "local", "local": settings.bus.local.model_copy(
        update={"path": workspace / "bus.sqlite3"})})
    index = settings.alerting.index.model_copy(update={"backend": "sqlite", "path": workspace / "index.sqlite3"})
    detect = DetectSettings(**{**settings.alerting.detect.model_dump(), **DEMO_DETECT})
    alerting = settings.alerting.model_copy(update={"index": index, "detect": detect})
    ingest = settings.ingest.model_copy(update={"state_path": workspace / "ingest.sqlite3"})
    nlp = settings.nlp.model_copy(update={"model_dir": model_dir})
    return settings.model_copy(update={"bus": bus, "alerting": alerting, "ingest": ingest, "nlp": nlp})


class _Stage(threading.Thread):
    """A worker thread that drains its topic once ``upstream`` is done; errors are kept for the caller."""

    def __init__(self, worker: StageWorker, upstream: threading.Event) -> None:
        super().__init__(name=worker.stage, daemon=True)
        self.worker, self.upstream = worker, upstream
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def _tick(self, consumed: int) -> None:
        if consumed == 0 and self.upstream.is_set():
            self._stop_event.set()

    def run(self) -> None:
        try:
            self.worker.run(self._stop_event, tick=self._tick)
        except BaseException as exc:  # re-raised in the main thread
            self.error = exc
        finally:
            self.done.set()


def run_demo(settings: Settings, workspace: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    """Run the pipeline on the bundled feeds; return the summary as a JSON-ready dict."""
    from alerting.index import make_index
    from alerting.stage import make_index_handler, run_detection
    from finsentinel.runtime import build_classify_worker, publish_alerts
    from ingest.worker import IngestWorker, demo_sources
    from training.seed import ensure_seed_model

    timings: dict[str, float] = {}
    started = time.perf_counter()
    model_dir = ensure_seed_model(settings.nlp.model_dir, settings.nlp.base_model, progress=progress)
    timings["model_s"] = round(time.perf_counter() - started, 1)
    ws = _fresh_workspace(workspace)
    cfg = _demo_settings(settings, ws, model_dir)
    bus = LocalBus(cfg.bus.local.path)
    topics = cfg.bus.topics
    bus.ensure_topics([topics.raw, topics.scored, topics.alerts])
    index = make_index(cfg.alerting.index)
    index.ensure()
    try:
        t0 = time.perf_counter()
        progress("demo: ingest → classify → index running over the local bus")
        ingest_done = threading.Event()
        classify = _Stage(build_classify_worker(cfg, bus), ingest_done)
        indexer = _Stage(StageWorker(bus, "index", "finsentinel-alert", [topics.scored],
                                     make_index_handler(index), max_batch=500), classify.done)
        classify.start()
        indexer.start()
        ingest_source = cfg.ingest.model_copy(update={"sources": demo_sources()})
        ingest_bus = LocalBus(cfg.bus.local.path)  # its own connection, as a separate worker would have
        try:
            ingest_stats = IngestWorker(ingest_source, ingest_bus, topics.raw).run_once()
        finally:
            ingest_bus.close()
            ingest_done.set()
            for stage in (classify, indexer):
                stage.join()  # they drain what was published, then stop
        for stage in (classify, indexer):
            if stage.error is not None:
                raise stage.error
        timings["pipeline_s"] = round(time.perf_counter() - t0, 1)
        progress("demo: detecting negative spikes")
        alerts = run_detection(index, cfg.alerting.detect)
        publish_alerts(bus, topics.alerts, alerts, {})
        return _summary(cfg, ingest_stats, classify.worker, indexer.worker, index, alerts,
                        model_dir, timings, started)
    finally:
        index.close()
        bus.close()


def _summary(cfg: Settings, ingest_stats: Any, classify: StageWorker, indexer: StageWorker, index: Any,
             alerts: list[Alert], model_dir: Path, timings: dict[str, float], started: float) -> dict[str, Any]:
    from alerting.views import alert_view
    from nlp.linking import Watchlist

    items = index.query(limit=None)
    names = {c.id: c.name for c in Watchlist.load(cfg.nlp.watchlist).companies}
    timings["total_s"] = round(time.perf_counter() - started, 1)
    stats = asdict(ingest_stats)
    return {
        "ingested": int(stats["published"]),
        "duplicates": int(stats["duplicates"]),
        "skipped": int(stats["skipped"]),
        "classified": classify.stats.published,
        "indexed": index.count(),
        "dead_lettered": classify.stats.dead_lettered + indexer.stats.dead_lettered,
        "by_sentiment": dict(Counter(i.sentiment for i in items).most_common()),
        "by_topic": dict(Counter(i.topic for i in items).most_common()),
        "by_lang": dict(Counter(i.lang for i in items).most_common()),
        "model": {"dir": str(model_dir), "by_lang": {
            lang: Counter(i.model_version for i in items if i.lang == lang).most_common(1)[0][0]
            for lang in sorted({i.lang for i in items})}},
        "bucket_minutes": cfg.alerting.detect.bucket_minutes,
        "alerts": [alert_view(a, names) for a in alerts],
        "timings": timings,
    }


def format_summary(result: dict[str, Any]) -> str:
    """The human-readable summary printed by ``finsentinel demo``."""
    lines = [
        "FinSentinel demo: bundled feeds -> local bus -> classifier -> embedded index -> spike detection",
        "models     " + ", ".join(f"{lang}: {v}" for lang, v in result["model"]["by_lang"].items())
        + f"  (default {result['model']['dir']})",
        f"ingested   {result['ingested']} items  ({result['duplicates']} duplicates dropped, "
        f"{result['skipped']} malformed skipped)",
        f"classified {result['classified']}   indexed {result['indexed']}   dead-lettered {result['dead_lettered']}",
        "languages  " + ", ".join(f"{k} {v}" for k, v in result["by_lang"].items()),
        "sentiment  " + ", ".join(f"{k} {v}" for k, v in result["by_sentiment"].items()),
        "topics     " + ", ".join(f"{k} {v}" for k, v in result["by_topic"].items()),
        "",
        f"alerts ({len(result['alerts'])}, {result['bucket_minutes']}-minute buckets):",
    ]
    if not result["alerts"]:
        lines.append("  none")
    for a in result["alerts"]:
        who = a["entity_name"] or (f"topic {a['topic']}" if a["scope"] == "topic" else "all news")
        lines.append(
            f"  [{a['severity']}] {who}  topic: {a['topic'] or '-'}  {a['start'][:16]} -> {a['end'][:16]} UTC"
        )
        lines.append(
            f"      {a['observed']} negative of {a['total']} items vs {a['expected']} expected "
            f"(share {a['share']:.0%} vs baseline {a['baseline_share']:.0%}, p={a['p_value']:.1e})"
        )
        lines.extend(f"      - {h['title']}  [{h['source']}]" for h in a["headlines"])
    t = result["timings"]
    lines += ["", f"time: model {t['model_s']}s, pipeline {t['pipeline_s']}s, total {t['total_s']}s", ""]
    return "\n".join(lines)
