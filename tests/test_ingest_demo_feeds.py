"""The bundled demo feeds: reproducible, realistic enough, and what the demo's alerting needs."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from finsentinel.bus.local import LocalBus
from finsentinel.schema import RawItem
from finsentinel.settings import IngestSettings
from ingest import demo_text_en, demo_text_zh
from ingest.demo_feeds import (
    END,
    EPISODE_END,
    EPISODE_START,
    FEEDS,
    START,
    _slots,
    build_stories,
    main,
)
from ingest.demo_profiles import COMPANIES
from ingest.normalize import entity_hints
from ingest.worker import IngestStats, IngestWorker, demo_sources

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "ingest" / "samples"
AURORA_NAMES = ("Aurora Motors", "Aurora Auto", "$AURM", "极光")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[IngestStats, list[RawItem]]:
    tmp = tmp_path_factory.mktemp("demo")
    bus = LocalBus(tmp / "bus.db")
    stats = IngestWorker(IngestSettings(sources=demo_sources(), state_path=tmp / "state.db"), bus, "raw").run_once()
    consumer = bus.consumer("t", ["raw"])
    items: list[RawItem] = []
    while batch := consumer.poll(1000, 0.05):
        items += [RawItem.from_json(r.value) for r in batch]
    bus.close()
    return stats, items


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_regeneration_reproduces_the_committed_files(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0  # python -m ingest.demo_feeds --out DIR
    fresh, committed = files_under(tmp_path), files_under(SAMPLES)
    assert sorted(fresh) == sorted(committed), "run `python -m ingest.demo_feeds` and commit ingest/samples"
    for name, data in fresh.items():
        assert data == committed[name], f"{name} differs: run `python -m ingest.demo_feeds`"


def test_demo_sources_cover_every_feed() -> None:
    sources = demo_sources()
    assert [s.name for s in sources] == [f.name for f in FEEDS]
    assert all(s.path.exists() for s in sources)
    assert demo_sources(Path("/elsewhere"))[0].path == Path("/elsewhere") / FEEDS[0].path


def test_counts_and_languages(ingested: tuple[IngestStats, list[RawItem]]) -> None:
    stats, items = ingested
    assert stats.published == len(items) >= 300
    assert len({i.id for i in items}) == len(items)
    by_lang = Counter(i.lang for i in items)
    assert set(by_lang) == {"en", "zh"} and min(by_lang.values()) >= 0.4 * len(items)
    assert 0.07 * stats.fetched <= stats.duplicates <= 0.13 * stats.fetched  # ~10% syndicated
    assert stats.skip_reasons == {"bad_date": 1, "missing_date": 1, "missing_title": 1}
    assert stats.fetched == stats.published + stats.duplicates + stats.skipped


def test_times_span_the_two_days_in_utc(ingested: tuple[IngestStats, list[RawItem]]) -> None:
    _, items = ingested
    times = [i.published_at for i in items]
    assert START <= min(times) and max(times) < END
    per_day = Counter(t.date() for t in times)
    assert len(per_day) == 2 and min(per_day.values()) >= 0.4 * len(items)


def test_language_of_auto_detected_social_feeds(ingested: tuple[IngestStats, list[RawItem]]) -> None:
    _, items = ingested
    assert {i.lang for i in items if i.source == "stocktalk"} == {"en"}
    assert {i.lang for i in items if i.source == "guyouquan"} == {"zh"}


def test_aurora_episode_is_present_in_both_languages(ingested: tuple[IngestStats, list[RawItem]]) -> None:
    _, items = ingested
    aurora = [i for i in items if any(n in i.title or n in i.body for n in AURORA_NAMES)]
    in_window = [i for i in aurora if EPISODE_START <= i.published_at < EPISODE_END]
    langs = Counter(i.lang for i in in_window)
    assert 20 <= len(in_window) <= 30 and min(langs["en"], langs["zh"]) >= 10
    assert len({i.title for i in in_window}) == len(in_window)  # distinct stories
    before = [i for i in aurora if i.published_at < EPISODE_START]
    assert len(before) >= 25  # normal coverage first, like every other company
    titles = " ".join(i.title for i in in_window)
    assert all(w in titles for w in ("recall", "fraud", "resign", "plunge", "召回", "立案调查", "暴跌", "辞职"))


def test_sentiment_mix_and_spread() -> None:
    stories, extras = build_stories()
    routine = [s for s in stories if s.kind != "episode"]
    share = Counter(s.sentiment for s in routine)
    assert share["neu"] > share["pos"] > share["neg"]
    assert 0.12 <= share["neg"] / len(routine) <= 0.18
    episode = [s for s in stories if s.kind == "episode"]
    assert 20 <= len(episode) <= 25 and {s.sentiment for s in episode} == {"neg"}
    for company in COMPANIES:  # routine bad news never bunches into one hour
        hours = Counter(s.at.strftime("%d%H") for s in routine if s.company == company.id and s.sentiment == "neg")
        assert max(hours.values()) == 1
    assert sum(1 for e in extras if e.copy_of is not None) == round(0.1 * len(stories))


def test_every_company_named_as_in_the_watchlist() -> None:
    watchlist = yaml.safe_load((REPO / "nlp" / "watchlist.yaml").read_text(encoding="utf-8"))["companies"]
    by_id = {c["id"]: c for c in watchlist}
    assert sorted(by_id) == sorted(c.id for c in COMPANIES)
    for company in COMPANIES:
        entry = by_id[company.id]
        assert company.en["name"] == entry["name"] and company.zh["name"] == entry["name_zh"]
        names = {entry["name"], entry["name_zh"], *entry["aliases"], *(str(t) for t in entry["tickers"])}
        used = {*company.en["aliases"], *company.zh["aliases"]}  # type: ignore[misc]
        tickers = entity_hints(f"{company.en['ref']} {company.en['tag']} {company.zh['code']}")
        used |= {t.lstrip("$") for t in tickers}
        assert used <= names, used - names


def test_headlines_are_varied() -> None:
    stories, _ = build_stories()
    assert len({s.title for s in stories}) == len(stories)
    # No single template writes more than a few headlines.
    templates = [t for m in (demo_text_en, demo_text_zh) for t in (*m.GENERIC, *m.SOCIAL, *m.MACRO)]
    assert len(templates) >= 150
    per_company = Counter((s.company, s.lang) for s in stories if s.kind == "news")
    assert min(per_company.values()) >= 16


@pytest.mark.parametrize("module", [demo_text_en, demo_text_zh])
def test_every_template_renders_for_every_company(module: Any) -> None:
    rng = random.Random(0)
    when = datetime(2026, 3, 2, 12, tzinfo=START.tzinfo)
    lang = "en" if module is demo_text_en else "zh"
    for company in COMPANIES:
        context = tuple(("neu", c, "") for c in module.CONTEXT)
        for sentiment, title, body in (*module.GENERIC, *module.SECTOR[company.sector], *module.SOCIAL,
                                       *module.MACRO, *context):
            slots = _slots(rng, lang, company, sentiment, when)
            for text in (title, body):
                assert "{" not in text.format_map(slots)  # an unknown slot raises KeyError
