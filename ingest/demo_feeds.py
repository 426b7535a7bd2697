"""Deterministic generator of the bundled demo feeds (``ingest/samples``).

``python -m ingest.demo_feeds [--out DIR]`` writes real RSS 2.0 XML and JSON API responses
covering 2026-03-02 00:00 to 2026-03-04 00:00 UTC in English and Chinese, about the eight
fictional companies of ``nlp/watchlist.yaml`` plus market news: mostly neutral, some positive,
~15% negative, an Aurora Motors bad-news episode on day 2 (09:00-13:00 UTC), ~10% syndicated
copies (same URL with tracking parameters, or the same text under another URL) and three
malformed entries. A seeded ``random.Random`` makes every byte reproducible.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from finsentinel.schema import normalise_text
from ingest import demo_text_en, demo_text_zh
from ingest.demo_profiles import (
    API_OUTLETS_EN,
    API_OUTLETS_ZH,
    COMPANIES,
    HANDLES_EN,
    HANDLES_ZH,
    POOLS_EN,
    POOLS_ZH,
    Company,
)
from ingest.demo_writers import FeedSpec, Placed, write_feed

log = logging.getLogger(__name__)

SEED = 20260302
START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=2)
EPISODE_START = datetime(2026, 3, 3, 9, tzinfo=UTC)
EPISODE_END = EPISODE_START + timedelta(hours=4)
NEWS_PER_COMPANY = {"neu": 10, "pos": 4, "neg": 2}  # per company and language
SOCIAL_PER_COMPANY = {"neu": 2, "pos": 1, "neg": 1}
MACRO_PER_LANG = 18
SYNDICATED_SHARE = 0.10
NEGATIVE_GAP = timedelta(hours=3)  # a company's routine bad news is spread out, not a spike
ROLE_WEIGHTS = {"rss1": 4, "rss2": 3, "api": 3}


FEEDS: tuple[FeedSpec, ...] = (
    FeedSpec("harbor-wire", "en_harbor_wire.xml", "rss", "en", "UTC", "newsapi", "en", "rss1", "rfc822_gmt",
             "Harbor Wire: Markets", "https://www.harborwire.example"),
    FeedSpec("ledger-daily", "en_ledger_daily.xml", "rss", "en", "America/New_York", "newsapi", "en", "rss2",
             "rfc822_local", "Ledger Daily: Companies", "https://ledgerdaily.example"),
    FeedSpec("newsdesk-api", "en_newsdesk_api", "json", "en", "UTC", "newsapi", "en", "api", "iso_z",
             "Newsdesk API", "https://api.newsdesk.example"),
    FeedSpec("stocktalk", "en_stocktalk.json", "json", "auto", "UTC", "social", "en", "social", "epoch",
             "StockTalk", "https://stocktalk.example"),
    FeedSpec("haichuan-finance", "zh_haichuan_finance.xml", "rss", "zh", "Asia/Shanghai", "newsapi", "zh", "rss1",
             "rfc822_local", "海川财经·公司", "https://www.haichuan.example"),
    FeedSpec("jingwen-flash", "zh_jingwen_flash.xml", "rss", "zh", "Asia/Shanghai", "newsapi", "zh", "rss2",
             "naive_local", "鲸闻快讯", "https://flash.jingwen.example"),
    FeedSpec("huixun-api", "zh_huixun_api", "json", "zh", "+08:00", "newsapi", "zh", "api", "iso_local",
             "汇讯聚合", "https://api.huixun.example"),
    FeedSpec("guyouquan", "zh_guyouquan.json", "json", "auto", "+08:00", "social", "zh", "social", "naive_local",
             "股友圈", "https://guyouquan.example"),
)


@dataclass(frozen=True)
class Story:
    """One item to write into a feed."""

    lang: str
    role: str
    at: datetime
    title: str
    body: str
    sentiment: str
    company: str | None
    kind: str  # news | social | macro | episode
    copy_of: int | None = None  # index of the original story for syndicated copies
    copy_mode: str = ""  # utm | mirror
    malformed: str = ""  # missing_title | bad_date | missing_date


class _Slots(dict[str, object]):
    def __missing__(self, key: str) -> object:
        raise KeyError(f"demo template slot {{{key}}} has no value")


def _fmt(template: str, slots: _Slots) -> str:
    return template.format_map(slots)


def _hour_weights(lang: str) -> list[float]:
    """Items per UTC hour: English peaks in New York hours, Chinese in Beijing hours."""
    if lang == "en":
        return [1.0] * 6 + [2.0] * 5 + [5.0] * 11 + [2.0] * 2
    return [5.0] * 10 + [3.0] * 5 + [0.6] * 8 + [2.0]


def _draw_time(rng: random.Random, lang: str, lo: datetime, hi: datetime) -> datetime:
    weights = _hour_weights(lang)
    while True:
        day = rng.randrange(2)
        hour = rng.choices(range(24), weights)[0]
        at = START + timedelta(days=day, hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))
        if lo <= at < hi:
            return at


def _numbers(rng: random.Random, sentiment: str) -> dict[str, object]:
    pct = round(rng.uniform(0.8, 6.9), 1)
    eps = round(rng.uniform(0.35, 3.2), 2)
    gap = round(rng.uniform(0.04, 0.18), 2)
    coupon = rng.uniform(2.8, 6.2)
    return {
        "pct": pct, "pct2": round(pct + rng.uniform(1.0, 4.5), 1), "big": rng.randint(11, 38),
        "small": rng.randint(5, 30), "n": rng.randint(2, 9), "jobs_n": rng.randrange(120, 2400, 10),
        "eps": f"${eps:.2f}", "est": f"${eps + (gap if sentiment == 'neg' else -gap):.2f}",
        "coupon": f"{coupon:.2f}", "coupon2": f"{coupon + rng.uniform(0.3, 0.6):.2f}",
        "dom": rng.randint(8, 28), "deliv_n": rng.randrange(18000, 46000, 10), "nim": f"{rng.uniform(2.6, 3.4):.2f}",
        "nrr": rng.randint(108, 131), "pe": rng.randint(9, 38),
        "yld": f"{rng.uniform(4.02, 4.48):.2f}", "usdjpy": f"{rng.uniform(148, 153):.2f}",
        "eurusd": f"{rng.uniform(1.07, 1.10):.4f}", "pct_small": f"{rng.uniform(0.1, 0.6):.1f}",
        "pct_small2": f"{rng.uniform(0.1, 0.9):.1f}", "oil": f"{rng.uniform(68, 82):.2f}",
        "oil_gap": f"{rng.uniform(3, 5):.2f}", "gold": f"{rng.randrange(2850, 3050):,}",
        "infl": f"{rng.uniform(2.0, 2.6):.1f}", "infl2": f"{rng.uniform(2.4, 3.0):.1f}",
        "pmi": f"{rng.uniform(49.6, 51.2):.1f}", "pct_idx": f"{rng.uniform(1.1, 2.9):.1f}",
        "conf_idx": f"{rng.uniform(98, 112):.1f}", "pct_oil": f"{rng.uniform(2.1, 4.5):.1f}",
        "cny": f"{rng.uniform(7.08, 7.19):.4f}", "yld_cn": f"{rng.uniform(1.62, 1.95):.2f}",
        "turnover": f"{rng.uniform(1.05, 1.62):.2f}", "yi": f"{rng.uniform(1.2, 58):.1f}",
        "yi_usd": f"{rng.uniform(1.5, 30):.1f}亿美元", "wan": rng.randrange(60, 2400, 10),
        "yi_big": rng.randrange(500, 4000, 10), "yi_mid": rng.randrange(12, 95),
        "amt": f"${rng.uniform(1.1, 9.8):.1f} billion" if rng.random() < 0.5 else f"${rng.randrange(120, 950, 10)} million",
        "amt_small": f"${rng.randrange(2, 48)} million", "yuan_bn": f"{rng.uniform(1.5, 12):.1f} billion yuan",
    }


def _slots(rng: random.Random, lang: str, company: Company | None, sentiment: str, at: datetime) -> _Slots:
    num = _numbers(rng, sentiment)
    pools = POOLS_EN if lang == "en" else POOLS_ZH
    slots = _Slots({k: rng.choice(v) for k, v in pools.items()})
    slots.update(num)
    div, ytd = rng.uniform(0.8, 6.5), round(rng.uniform(-14, 26), 1)
    slots.update(qtr="fourth-quarter", year="2026", wd=f"{at:%A}", div=f"${div / 10:.2f}")
    if lang == "en":
        slots.update(jobs=f"{num['jobs_n']:,}", deliv=f"{num['deliv_n']:,}",
                     ytd=f"{'risen' if ytd >= 0 else 'fallen'} {abs(ytd)}%")
    else:
        slots.update(jobs=num["jobs_n"], deliv=num["deliv_n"], div=f"{div:.1f}",
                     month=rng.choice((3, 4)), dom=rng.randint(16, 30),
                     ytd_zh=f"{'上涨' if ytd >= 0 else '下跌'}{abs(ytd)}%")
    if company is not None:
        slots.update(_company_slots(rng, lang, company))
    return slots


def _company_slots(rng: random.Random, lang: str, company: Company) -> dict[str, object]:
    prof = company.en if lang == "en" else company.zh
    aliases = list(prof["aliases"])  # type: ignore[call-overload]
    prods = list(prof["prod"])  # type: ignore[call-overload]
    ccy = str(prof["ccy"])
    price = company.price * rng.uniform(0.93, 1.07)
    out: dict[str, object] = {k: v for k, v in prof.items() if isinstance(v, str)}
    out.update(
        co=prof["name"] if not aliases or rng.random() < 0.75 else rng.choice(aliases),
        prod=rng.choice(prods), price=ccy.format(price), price_zh=ccy.format(price),
        target=ccy.format(price * rng.uniform(1.15, 1.4)), low_target=ccy.format(price * rng.uniform(0.7, 0.9)),
        price_car=f"${rng.randrange(32, 55)},900", price_car_zh=f"{rng.uniform(17, 32):.2f}万元",
    )
    if lang == "en":
        out["Unit"] = str(prof["unit"])[:1].upper() + str(prof["unit"])[1:]
    else:
        out["ref"] = f"{prof['name']}{prof['code']}"
        if rng.random() < 0.4:
            out["co"] = f"{out['co']}{prof['code']}"
    return out


def _company_stories(rng: random.Random, lang: str, usage: Counter[str],
                     bad_times: dict[str, list[datetime]]) -> list[Story]:
    text = demo_text_en if lang == "en" else demo_text_zh
    stories: list[Story] = []
    for company in COMPANIES:
        hi = EPISODE_START - timedelta(minutes=30) if company.id == "aurora-motors" else END
        for kind, quota, pool in (("news", NEWS_PER_COMPANY, text.GENERIC + text.SECTOR[company.sector]),
                                  ("social", SOCIAL_PER_COMPANY, text.SOCIAL)):
            for sentiment, count in quota.items():
                choices = [t for t in pool if t[0] == sentiment]
                rng.shuffle(choices)
                choices.sort(key=lambda t: usage[t[1]])  # least-used templates first; stable after shuffle
                for template in choices[:count]:
                    usage[template[1]] += 1
                    at = _spaced_time(rng, lang, hi, bad_times.setdefault(company.id, []), sentiment == "neg")
                    stories.append(_render(rng, lang, company, template, at, kind))
    return stories


def _spaced_time(rng: random.Random, lang: str, hi: datetime, taken: list[datetime], negative: bool) -> datetime:
    at = _draw_time(rng, lang, START, hi)
    for _ in range(500):
        if not negative or all(abs(at - t) >= NEGATIVE_GAP for t in taken):
            break
        at = _draw_time(rng, lang, START, hi)
    if negative:
        taken.append(at)
    return at


def _render(rng: random.Random, lang: str, company: Company | None, template: tuple[str, str, str],
            at: datetime, kind: str) -> Story:
    text = demo_text_en if lang == "en" else demo_text_zh
    sentiment, title_t, body_t = template
    slots = _slots(rng, lang, company, sentiment, at)
    body = _fmt(body_t, slots)
    if body and company is not None and rng.random() < 0.5:
        body += ("\n" if rng.random() < 0.5 else " " if lang == "en" else "") + _fmt(rng.choice(text.CONTEXT), slots)
    role = "social" if kind == "social" else rng.choices(list(ROLE_WEIGHTS), list(ROLE_WEIGHTS.values()))[0]
    return Story(lang, role, at, _fmt(title_t, slots), body, sentiment, company.id if company else None, kind)


def _macro_stories(rng: random.Random, lang: str) -> list[Story]:
    text = demo_text_en if lang == "en" else demo_text_zh
    templates = list(text.MACRO)
    rng.shuffle(templates)
    return [_render(rng, lang, None, t, _draw_time(rng, lang, START, END), "macro")
            for t in templates[:MACRO_PER_LANG]]


def _episode_stories(lang: str) -> list[Story]:
    text = demo_text_en if lang == "en" else demo_text_zh
    out = [Story(lang, role, EPISODE_START + timedelta(minutes=m, seconds=17 * (m % 3)), title, body, "neg",
                 "aurora-motors", "episode") for m, role, title, body in text.EPISODE]
    out += [Story(lang, role, EPISODE_START + timedelta(minutes=m), title, body, "neu", "aurora-motors", "news")
            for m, role, title, body in text.AFTERMATH]
    return out


def _syndicate(rng: random.Random, stories: list[Story]) -> list[Story]:
    """Copies of ~10% of the news stories in another feed of the same language."""
    candidates = [i for i, s in enumerate(stories) if s.role != "social"]
    picked = sorted(rng.sample(candidates, round(len(stories) * SYNDICATED_SHARE)))
    copies = []
    for i in picked:
        original = stories[i]
        role = rng.choice([r for r in ROLE_WEIGHTS if r != original.role])
        delay = timedelta(minutes=rng.randint(1, 25), seconds=rng.randrange(60))
        copies.append(replace(original, role=role, at=min(original.at + delay, END - timedelta(seconds=1)),
                              copy_of=i, copy_mode="utm" if rng.random() < 0.6 else "mirror"))
    return copies


def _malformed() -> list[Story]:
    """Three broken entries: a JSON article with no title, an RSS date that is not a date, a post with no time."""
    at = START + timedelta(hours=15, minutes=12)
    return [
        Story("en", "api", at, "", "A preview of this week's earnings calendar is being prepared.", "neu", None,
              "news", malformed="missing_title"),
        Story("zh", "rss2", at + timedelta(hours=2), "快讯：港股收盘 恒指微跌", "恒生指数收盘微跌，成交额较前日减少。",
              "neu", None, "news", malformed="bad_date"),
        Story("en", "social", at + timedelta(hours=5), "Anyone else seeing delayed quotes on the app tonight?", "",
              "neu", None, "social", malformed="missing_date"),
    ]


def build_stories(seed: int = SEED) -> tuple[list[Story], list[Story]]:
    """The unique stories and the extra entries (syndicated copies, malformed ones), deterministically."""
    rng = random.Random(seed)  # noqa: S311 - demo content, not security
    usage: Counter[str] = Counter()
    bad_times: dict[str, list[datetime]] = {}  # per company, across languages
    stories: list[Story] = []
    for lang in ("en", "zh"):
        stories += _company_stories(rng, lang, usage, bad_times)
        stories += _macro_stories(rng, lang)
        stories += _episode_stories(lang)
    stories = _unique(stories)
    stories.sort(key=lambda s: (s.at, s.lang, s.title))
    return stories, _syndicate(rng, stories) + _malformed()


def _unique(stories: list[Story]) -> list[Story]:
    seen: set[str] = set()
    out = []
    for story in stories:
        key = normalise_text(story.title)
        if key in seen:
            raise ValueError(f"demo generator produced the title twice: {story.title!r}")
        seen.add(key)
        out.append(story)
    return out


def write_feeds(out_dir: Path, seed: int = SEED) -> dict[str, int]:
    """Write every feed under ``out_dir``; return entries written per feed name."""
    stories, extras = build_stories(seed)
    placed = _place(random.Random(seed + 1), stories, extras)  # noqa: S311 - demo content, not security
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for feed in FEEDS:
        mine = [p for s, p in zip(stories + extras, placed, strict=True)
                if s.lang == feed.content_lang and s.role == feed.role]
        counts[feed.name] = write_feed(out_dir, feed, mine)
    return counts


def _place(rng: random.Random, stories: list[Story], extras: list[Story]) -> list[Placed]:
    """URL, id, author and outlet of every entry; a ``utm`` copy reuses its original's URL plus tracking."""
    out: list[Placed] = []
    for n, story in enumerate(stories + extras):
        native = str(1_898_000_000_000_000_000 + n * 7_919_013 + rng.randrange(1000))
        outlet, host = rng.choice(API_OUTLETS_EN if story.lang == "en" else API_OUTLETS_ZH)
        author = rng.choice(HANDLES_EN if story.lang == "en" else HANDLES_ZH) if story.role == "social" else ""
        if story.copy_of is not None and story.copy_mode == "utm":
            url = out[story.copy_of].url + rng.choice(_TRACKING[story.lang])
        else:
            url = _fresh_url(story, host, native, author, rng)
        out.append(Placed(story.title, story.body, story.at, url, native, author, outlet, story.malformed))
    return out


_TRACKING = {
    "en": ("?utm_source=newsdesk&utm_medium=api", "?utm_source=partner_feed&utm_medium=rss&utm_campaign=markets",
           "?utm_source=twitter&utm_medium=social#comments"),
    "zh": ("?from=timeline", "?spm=a2c6h.12873639.0.0", "?utm_source=huixun&utm_medium=referral"),
}


def _fresh_url(story: Story, host: str, native: str, author: str, rng: random.Random) -> str:
    local = story.at + timedelta(hours=8)
    num = rng.randrange(100_000, 999_999)
    if story.lang == "en":
        return {
            "rss1": f"https://www.harborwire.example/markets/{story.at:%Y/%m/%d}/{slug(story.title)}",
            "rss2": f"https://ledgerdaily.example/{'companies' if story.company else 'markets'}/"
                    f"{slug(story.title, 6)}-{num}",
            "api": f"https://{host}/{story.at:%Y/%m}/{slug(story.title, 7)}",
            "social": f"https://stocktalk.example/{author}/status/{native}",
        }[story.role]
    return {
        "rss1": f"https://www.haichuan.example/stock/{local:%Y%m%d}/{num}.html",
        "rss2": f"https://flash.jingwen.example/live/{num}",
        "api": f"https://{host}/a/{local:%Y%m%d}/{num}.html",
        "social": f"https://guyouquan.example/post/{native}",
    }[story.role]


def main(argv: list[str] | None = None) -> int:
    """Regenerate the bundled samples (or write them to ``--out``)."""
    parser = argparse.ArgumentParser(prog="python -m ingest.demo_feeds", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "samples")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    counts = write_feeds(args.out)
    for name, n in counts.items():
        log.info("%-18s %4d entries", name, n)
    log.info("wrote %d entries to %s", sum(counts.values()), args.out)
    return 0


def slug(text: str, words: int = 9) -> str:
    """A URL slug of an English title."""
    parts = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(parts[:words]) or "item"


if __name__ == "__main__":
    raise SystemExit(main())
