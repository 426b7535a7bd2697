"""``finsentinel bench index``: bulk upsert throughput of the configured index backend;
``finsentinel bench detect``: what a live detection run costs over a long history;
``finsentinel bench dashboard``: what each dashboard request costs over a long history.

The documents are news-sized and bilingual (as the feeds are): half English, half Chinese,
a 60-90 character title, a body of 800-3,000 characters, one to three companies, a topic and
sentiment scores, written in batches of the index worker's size (500). Generated with a seeded
generator, so every run writes the same documents.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerting.index import make_index
from alerting.index.sqlite import SqliteIndex
from finsentinel.schema import ScoredItem, Sentiment, content_id
from finsentinel.settings import DetectSettings, IndexSettings

_EN_WORDS = (
    "shares fell after the company reported weaker quarterly revenue and cut its outlook while regulators "
    "opened a probe into accounting at the unit analysts said the recall could cost more than expected as "
    "bond yields rose and investors sold bank stocks amid concerns over credit quality and liquidity"
).split()
_ZH_TEXT = (
    "公司股价大幅下跌监管部门对其财务问题立案调查分析师认为召回事件成本可能超出预期投资者担忧信用质量与流动性"
    "央行宣布下调存款准备金率市场情绪有所回暖新能源汽车销量同比增长半导体板块领涨债券收益率上行银行股承压"
)
_COMPANIES = ("aurora-motors", "pacific-grid", "jinhai-securities", "lumen-pharma", "zhongtian-semi",
              "northwind-bank", "meridian-foods", "harbor-logistics")
_TOPICS = ("earnings", "regulation", "product", "markets", "macro", "legal")
_SENTIMENTS: tuple[Sentiment, ...] = ("negative", "neutral", "positive")
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _text(rng: random.Random, lang: str, chars: int) -> str:
    if lang == "zh":
        start = rng.randrange(len(_ZH_TEXT))
        return ((_ZH_TEXT * (chars // len(_ZH_TEXT) + 2))[start : start + chars])
    return " ".join(rng.choices(_EN_WORDS, k=chars // 5 + 2))[:chars]


def news_items(count: int, seed: int = 7, companies: int = 0) -> list[ScoredItem]:
    """``count`` realistic scored news items (deterministic for a seed); ``companies`` > 0 draws
    their companies from that many ids (``co-0``, ``co-1``, ...) instead of the eight named ones."""
    rng = random.Random(seed)  # noqa: S311 - reproducible benchmark data, not security
    pool = tuple(f"co-{n}" for n in range(companies)) or _COMPANIES
    items: list[ScoredItem] = []
    for n in range(count):
        lang = "zh" if n % 2 else "en"
        title = _text(rng, lang, rng.randint(20, 30) if lang == "zh" else rng.randint(60, 90))
        body = _text(rng, lang, rng.randint(300, 1000) if lang == "zh" else rng.randint(800, 3000))
        url = f"https://news.example/{lang}/{n}"
        sentiment = rng.choice(_SENTIMENTS)
        published = T0 + timedelta(seconds=n * 7)
        topic = rng.choice(_TOPICS)
        items.append(ScoredItem(
            id=content_id(url, title), source=f"feed-{n % 12}", url=url, title=title, body=body, lang=lang,
            published_at=published, fetched_at=published + timedelta(seconds=30), topic=topic,
            topic_scores={topic: 0.8, "markets": 0.1}, sentiment=sentiment,
            sentiment_scores={s: (0.8 if s == sentiment else 0.1) for s in _SENTIMENTS},
            sentiment_score=round(rng.uniform(-1, 1), 3),
            entities=tuple(rng.sample(pool, rng.randint(1, 3))), model_version="bench",
        ))
    return items


@contextmanager
def _filled_index(items: Sequence[ScoredItem]) -> Iterator[SqliteIndex]:
    """A temporary embedded index holding ``items``, written in batches of the index worker's size."""
    with tempfile.TemporaryDirectory(prefix="finsentinel-bench-") as tmp:
        index = SqliteIndex(Path(tmp) / "index.sqlite3")
        try:
            for lo in range(0, len(items), 500):
                index.upsert(items[lo : lo + 500])
            yield index
        finally:
            index.close()


def bench_index(settings: IndexSettings, docs: int = 20_000, batch: int = 500, path: Path | None = None) -> dict[str, Any]:
    """Upsert ``docs`` generated items in batches of ``batch``; return throughput figures.

    For the sqlite backend the index goes to ``path`` (default: a fresh temporary file).
    """
    items = news_items(docs)
    with tempfile.TemporaryDirectory(prefix="finsentinel-bench-") as tmp:
        if settings.backend == "sqlite":
            settings = settings.model_copy(update={"path": path or Path(tmp) / "index.sqlite3"})
        index = make_index(settings)
        try:
            index.ensure()
            started = time.perf_counter()
            for lo in range(0, len(items), batch):
                index.upsert(items[lo : lo + batch])
            elapsed = time.perf_counter() - started
            stored = index.count()
        finally:
            index.close()
    chars = sum(len(i.title) + len(i.body) for i in items)
    return {
        "backend": settings.backend, "docs": docs, "batch": batch, "seconds": round(elapsed, 3),
        "docs_per_s": round(docs / elapsed, 1), "mean_chars": round(chars / max(docs, 1)),
        "stored": stored,
    }


def bench_detect(settings: DetectSettings, history: int = 100_000, batch: int = 200, runs: int = 5,
                 companies: int = 0) -> dict[str, Any]:
    """Time the alert worker's detection over ``history`` indexed items (7 s apart: 100,000 are
    eight days; ``companies`` > 0 names that many companies instead of the eight demo ones), then
    ``runs`` runs after ``batch`` new items each, and one detection that re-reads the whole index
    (``run_detection``) for comparison. Embedded index, temporary file."""
    from alerting.stage import LiveDetection, run_detection

    items = news_items(history + batch * runs, companies=companies)
    with _filled_index(items[:history]) as index:
        live = LiveDetection(index, settings)
        started = time.perf_counter()
        live.run(items[history - 1].fetched_at)
        first = time.perf_counter() - started
        times: list[float] = []
        for lo in range(history, len(items), batch):
            index.upsert(items[lo : lo + batch])
            started = time.perf_counter()
            live.run(items[lo + batch - 1].fetched_at)
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        run_detection(index, settings, now=items[-1].fetched_at)
        full = time.perf_counter() - started
    run = sorted(times)[len(times) // 2]
    return {
        "history": history, "companies": companies or len(_COMPANIES), "batch": batch, "runs": runs,
        "first_run_s": round(first, 3),
        "run_s": round(run, 3), "max_run_s": round(max(times), 3), "full_rerun_s": round(full, 3),
        "speedup": round(full / run, 1),
    }


def bench_dashboard(history: int = 100_000, companies: int = 3_000, repeats: int = 5) -> dict[str, Any]:
    """Median seconds of each dashboard request (in-process, no network) over ``history`` indexed
    items (7 s apart: 100,000 are eight days) naming ``companies`` companies. Embedded index."""
    from fastapi.testclient import TestClient

    from alerting.dashboard.app import create_app

    company = "co-7" if companies else _COMPANIES[0]
    requests = {
        "overview_s": ("/api/overview", {}),
        "company_series_s": ("/api/series", {"scope": "entity", "key": company}),
        "company_items_s": ("/api/items", {"entity": company}),
        "search_s": ("/api/items", {"q": "recall", "sentiment": "negative"}),
        "alerts_s": ("/api/alerts", {}),
    }
    out: dict[str, Any] = {"history": history, "companies": companies or len(_COMPANIES), "repeats": repeats}
    with _filled_index(news_items(history, companies=companies)) as index:
        client = TestClient(create_app(index, {}))
        for name, (path, params) in requests.items():
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                client.get(path, params=params).raise_for_status()
                times.append(time.perf_counter() - started)
            out[name] = round(sorted(times)[len(times) // 2], 4)
    return out
