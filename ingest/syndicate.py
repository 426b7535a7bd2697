"""A seeded generator of syndicated news in English and Chinese, with ground truth, for dedup tests and the bench.

Each story is a title and a body of 4-6 sentences about one fictional company. About two thirds
of generated items are syndicated copies of a story published by other outlets minutes to hours
later, rewritten the way syndication rewrites: sentences reordered, bylines, datelines and
footers added, a title prefix, the last sentence dropped, Chinese converted to traditional
(Hong Kong or Taiwan variants) or to full-width digits, or nothing changed at all under another
URL. Hard negatives are follow-up stories about the same company that repeat one or two of the
earlier story's background sentences verbatim, as follow-ups do.

:func:`evaluate` scores dedup decisions against the ground truth: a flagged item is a true
positive when it is a copy and the item it was matched to belongs to its story.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from finsentinel.schema import content_id
from ingest import syndicate_vocab as v

Role = Literal["original", "copy", "followup"]
START = datetime(2026, 3, 2, tzinfo=UTC)
COPY_WEIGHTS = (0.30, 0.20, 0.22, 0.16, 0.12)  # 0..4 copies per story: 1.6 copies on average
FOLLOWUP_SHARE = 0.15
EXACT_SHARE = 0.08  # copies that are verbatim (another URL) or the same URL with tracking parameters


@dataclass(frozen=True, slots=True)
class SynItem:
    """One generated item with its ground truth: the story (``cluster``) and its ``role`` in it."""

    title: str
    body: str
    url: str
    outlet: str
    lang: str
    published_at: datetime
    cluster: int
    role: Role
    variant: str = ""  # copies: "verbatim" (same text, another URL), "tracking" (same URL + utm), "rewrite"

    @property
    def id(self) -> str:
        """The id ingest gives this item (from its canonical URL)."""
        return content_id(self.url, self.title, self.body)

    def row(self) -> dict[str, object]:
        """The item as a JSONL replay row (ground truth included, ingest ignores it)."""
        return {"title": self.title, "body": self.body, "url": self.url, "published_at": self.published_at.isoformat(),
                "outlet": self.outlet, "cluster": self.cluster, "role": self.role, "variant": self.variant}


@dataclass(frozen=True, slots=True)
class _Story:
    lang: str
    company: str
    title: str
    sentences: tuple[str, ...]
    slots: Mapping[str, object]


def _slots(rng: random.Random, lang: str, company: str) -> dict[str, object]:
    amt = f"${rng.uniform(1.1, 9.8):.1f} billion" if rng.random() < 0.5 else f"${rng.randrange(120, 950, 10)} million"
    pct = round(rng.uniform(1.5, 38.0), 1)
    ytd = round(rng.uniform(-25, 40), 1)
    common: dict[str, object] = {
        "co": company, "pct": pct, "pct2": round(rng.uniform(0.5, 12.0), 1), "n": rng.randint(2, 12),
        "n_k": f"{rng.randrange(1200, 98000, 100):,}", "coupon": f"{rng.uniform(2.5, 7.5):.2f}",
        "dom": rng.randint(2, 28), "year": rng.choice((2027, 2028, 2029)),
    }
    if lang == "en":
        return common | {
            "amt": amt, "amt2": f"${rng.randrange(40, 900, 5)} million", "wd": rng.choice(("Monday", "Tuesday",
            "Wednesday", "Thursday", "Friday")), "city": rng.choice(v.EN_CITIES), "person": rng.choice(v.EN_PEOPLE),
            "partner": f"{rng.choice(v.EN_NAME_A)} {rng.choice(v.EN_NAME_B)}", "firm": rng.choice(v.EN_FIRMS),
            "seg": rng.choice(v.EN_SEGS), "defect": rng.choice(v.EN_DEFECTS), "issue": rng.choice(v.EN_ISSUES),
            "qtr": rng.choice(("first quarter", "second quarter", "third quarter", "fourth quarter")),
            "month": rng.choice(("March", "April", "May", "June")), "price": f"${rng.uniform(4, 240):.2f}",
            "move": rng.choice(v.EN_MOVES), "session": rng.choice(("morning", "afternoon", "early", "late")),
            "outlet": rng.choice(v.EN_OUTLETS), "half": rng.choice(("first half", "second half")),
            "ytd": f"{'risen' if ytd >= 0 else 'fallen'} {abs(ytd)}%", "nth": rng.choice(("third", "fourth",
            "fifth", "sixth")), "adj": rng.choice(v.EN_ADJ), "div": f"${rng.uniform(0.05, 1.9):.2f}",
        }
    return common | {
        "yi": f"{rng.uniform(1.2, 96):.1f}", "yi2": f"{rng.uniform(0.3, 40):.2f}", "wd_zh": rng.choice(
            ("周一", "周二", "周三", "周四", "周五")), "city": rng.choice(v.ZH_CITIES), "person_zh": rng.choice(v.ZH_PEOPLE),
        "partner_zh": rng.choice(v.ZH_NAME_A) + rng.choice(v.ZH_NAME_B), "firm_zh": rng.choice(v.ZH_FIRMS),
        "seg_zh": rng.choice(v.ZH_SEGS), "defect_zh": rng.choice(v.ZH_DEFECTS), "issue_zh": rng.choice(v.ZH_ISSUES),
        "month_zh": rng.randint(3, 9), "price_zh": f"{rng.uniform(3, 180):.2f}", "move_zh": rng.choice(v.ZH_MOVES),
        "outlet_zh": rng.choice(v.ZH_OUTLETS), "half_zh": rng.choice(("上半年", "下半年")),
        "ytd_zh": f"{'上涨' if ytd >= 0 else '下跌'}{abs(ytd)}%", "nth_zh": rng.choice(("三", "四", "五", "六")),
        "adj_zh": rng.choice(v.ZH_ADJ), "div_zh": f"{rng.uniform(0.5, 12):.1f}",
    }


def _story(rng: random.Random, lang: str, company: str, keep: Sequence[str] = (),
           slots: Mapping[str, object] | None = None) -> _Story:
    """A story; a follow-up passes the earlier story's ``slots`` and the background sentences it repeats."""
    events, facts = (v.EN_EVENTS, v.EN_FACTS) if lang == "en" else (v.ZH_EVENTS, v.ZH_FACTS)
    fresh = _slots(rng, lang, company)
    values = {**fresh, **{k: slots[k] for k in ("co", "n_k", "n", "city")}} if slots else fresh
    _, title, lead = rng.choice(events)
    chosen = rng.sample(facts, rng.randint(4, 6) - len(keep))
    sentences = [lead.format_map(values), *(f.format_map(values) for f in chosen)]
    for sentence in keep:
        sentences.insert(rng.randint(1, len(sentences)), sentence)
    return _Story(lang, company, title.format_map(values), tuple(sentences), values)


def _join(lang: str, sentences: Sequence[str]) -> str:
    if lang == "zh":
        return "\n".join("".join(sentences[i:i + 2]) for i in range(0, len(sentences), 2))
    return "\n".join(" ".join(sentences[i:i + 2]) for i in range(0, len(sentences), 2))


def _people(rng: random.Random, lang: str) -> dict[str, str]:
    pool = v.EN_PEOPLE if lang == "en" else v.ZH_PEOPLE
    outlet = rng.choice(v.EN_OUTLETS if lang == "en" else v.ZH_OUTLETS)
    city = rng.choice(v.EN_CITIES if lang == "en" else v.ZH_CITIES)
    return {"reporter": rng.choice(pool), "reporter2": rng.choice(pool), "outlet": outlet, "city": city,
            "city_up": city.upper()}


def _rewrite(rng: random.Random, story: _Story) -> tuple[str, str]:
    """A syndicated copy's title and body: two or three of the rewrites syndication makes."""
    en = story.lang == "en"
    title, sentences = story.title, list(story.sentences)
    head: list[str] = []
    tail: list[str] = []
    names = _people(rng, story.lang)
    for op in rng.sample(("reorder", "byline", "footer", "title", "truncate", "script"), rng.randint(2, 3)):
        if op == "reorder":
            moved = sentences.pop(rng.randrange(1, len(sentences)))
            sentences.insert(rng.randrange(0, len(sentences) + 1), moved)
        elif op == "byline":
            head.append(rng.choice(v.EN_BYLINES if en else v.ZH_BYLINES).format_map(names))
        elif op == "footer":
            tail.append(rng.choice(v.EN_FOOTERS if en else v.ZH_FOOTERS).format_map(names))
        elif op == "title":
            title = rng.choice(v.EN_TITLE_PREFIXES if en else v.ZH_TITLE_PREFIXES) + title
        elif op == "truncate" and len(sentences) > 4:
            sentences.pop()
        elif op == "script" and not en:
            return _script_variant(rng, title, "\n".join([*head, _join("zh", sentences), *tail]))
    return title, "\n".join([*head, _join(story.lang, sentences), *tail])


def _script_variant(rng: random.Random, title: str, body: str) -> tuple[str, str]:
    """Traditional characters (Hong Kong or Taiwan standard) or full-width digits, as reposts use."""
    choice = rng.choice(("s2hk", "s2tw", "s2t", "fullwidth"))
    if choice == "fullwidth":
        table = str.maketrans("0123456789%", "０１２３４５６７８９％")
        return title.translate(table), body.translate(table)
    converter = _converter(choice)
    return str(converter.convert(title)), str(converter.convert(body))


@functools.cache
def _converter(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


def _host(outlet: str) -> str:
    ascii_part = "".join(c for c in outlet.lower() if c.isascii() and c.isalnum())
    return f"{ascii_part or 'cn' + hashlib.sha256(outlet.encode()).hexdigest()[:8]}.example"


def generate(n_items: int, seed: int = 7, start: datetime = START, days: float = 7.0) -> list[SynItem]:
    """About ``n_items`` items (exactly, after trimming) in publication order, over ``days`` days."""
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible by seed
    out: list[SynItem] = []
    cluster = 0
    span = days * 86400
    while len(out) < n_items:
        lang = rng.choice(("en", "zh"))
        company = (f"{rng.choice(v.EN_NAME_A)} {rng.choice(v.EN_NAME_B)}" if lang == "en"
                   else rng.choice(v.ZH_NAME_A) + rng.choice(v.ZH_NAME_B))
        at = start + timedelta(seconds=rng.uniform(0, span))
        story = _story(rng, lang, company)
        out.extend(_cluster_items(rng, story, cluster, at, "original"))
        cluster += 1
        if rng.random() < FOLLOWUP_SHARE:
            keep = rng.sample(story.sentences[1:], rng.randint(1, 2))
            follow = _story(rng, lang, company, keep=keep, slots=story.slots)
            later = at + timedelta(hours=rng.uniform(0.5, 30))
            out.extend(_cluster_items(rng, follow, cluster, later, "followup"))
            cluster += 1
    out.sort(key=lambda i: (i.published_at, i.role != "copy"))
    return _originals_first(out)[:n_items]


def _cluster_items(rng: random.Random, story: _Story, cluster: int, at: datetime, role: Role) -> Iterator[SynItem]:
    outlets = list(v.EN_OUTLETS if story.lang == "en" else v.ZH_OUTLETS)
    rng.shuffle(outlets)
    title, body = story.title, _join(story.lang, story.sentences)
    first = SynItem(title, body, _url(outlets[0], at, cluster, 0), outlets[0], story.lang, at, cluster, role)
    yield first
    copies = rng.choices(range(len(COPY_WEIGHTS)), COPY_WEIGHTS)[0]
    for n in range(1, copies + 1):
        when = at + timedelta(minutes=rng.uniform(2, 18 * 60))
        if rng.random() < EXACT_SHARE:
            tracking = rng.random() < 0.5
            url = first.url + "?utm_source=rss&utm_medium=feed" if tracking else _url(outlets[n], when, cluster, n)
            yield replace(first, url=url, outlet=outlets[n], published_at=when, role="copy",
                          variant="tracking" if tracking else "verbatim")
            continue
        c_title, c_body = _rewrite(rng, story)
        yield SynItem(c_title, c_body, _url(outlets[n], when, cluster, n), outlets[n], story.lang, when, cluster,
                      "copy", "rewrite")


def _originals_first(items: list[SynItem]) -> list[SynItem]:
    """Ground truth follows stream order: the first item of a story in the stream is its original."""
    seen: set[int] = set()
    out = []
    for item in items:
        first = item.cluster not in seen
        seen.add(item.cluster)
        if first and item.role == "copy":
            item = replace(item, role="original", variant="")
        elif not first and item.role != "copy":
            item = replace(item, role="copy", variant="rewrite")
        out.append(item)
    return out


def _url(outlet: str, at: datetime, cluster: int, n: int) -> str:
    return f"https://www.{_host(outlet)}/{at:%Y/%m/%d}/story-{cluster}-{n}"


@dataclass(frozen=True)
class Score:
    """Dedup quality on a generated stream (copies are the positives).

    ``recall``/``precision`` count every copy; ``rewrite_recall`` only the rewritten ones (those that
    exact dedup cannot catch).
    """

    items: int
    copies: int
    flagged: int
    true_positives: int
    recall: float
    precision: float
    rewrite_recall: float


def evaluate(items: Sequence[SynItem], dup_of: Mapping[str, str]) -> Score:
    """Score ``dup_of`` (item URL → id of the item it was dropped as a copy of) against the ground truth.

    Keyed by URL because a copy under the original's URL plus tracking parameters has the original's id.
    A flagged item is a true positive when it is a copy and the item it was matched to is of its story.
    """
    cluster = {i.id: i.cluster for i in items}
    copies = [i for i in items if i.role == "copy"]
    flagged = [i for i in items if i.url in dup_of]

    def hit(item: SynItem) -> bool:
        return item.role == "copy" and item.url in dup_of and cluster.get(dup_of[item.url]) == item.cluster

    true_pos = sum(hit(i) for i in flagged)
    rewrites = [i for i in copies if i.variant == "rewrite"]
    return Score(len(items), len(copies), len(flagged), true_pos, _ratio(true_pos, len(copies)),
                 _ratio(true_pos, len(flagged)), _ratio(sum(hit(i) for i in rewrites), len(rewrites)))


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 1.0


def write_jsonl(items: Sequence[SynItem], path: Path) -> Path:
    """Write ``items`` as a JSONL replay file (one JSON object per line, UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item.row(), ensure_ascii=False) + "\n")
    return path
