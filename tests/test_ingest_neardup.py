"""Near-duplicate detection: the syndicated-rewrite test set, script variants, guards, horizon, memory."""

from __future__ import annotations

import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ingest.fingerprint import Fingerprint, Fingerprinter, fingerprint_text, shingle_hashes, title_key
from ingest.neardup import NearDupIndex
from ingest.normalize import clean_text, entity_hints
from ingest.syndicate import SynItem, evaluate, generate

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
BODY_EN = ("Aurora Motors said on Tuesday it would recall 48,000 Lumina SUVs because a battery module may "
           "overheat while charging. Shares of Aurora Motors fell 6% in early trading.\nThe company expects the "
           "recall to cost about $120 million, which it will book in the first quarter.")
LONGER = ("Owners should limit charging to 80% until dealers replace the affected modules, work the company expects "
          "to take about two hours per vehicle. Analysts at Bramwell Securities said the recall was manageable but "
          "would weigh on deliveries in March, when the company had planned a sales push for the refreshed model.")
BODY_ZH = "极光汽车周二晚间公告称，因电池模组存在过热风险，将召回4.8万辆Lumina SUV。受此影响，公司股价盘后下跌6%。公司预计召回费用约为8亿元，将计入一季度。"


def fp(index: NearDupIndex, title: str, body: str, lang: str = "en", at: datetime = T0) -> Fingerprint:
    title, body = clean_text(title), clean_text(body, keep_lines=True)
    made = index.fingerprint(title, body, lang, entity_hints(f"{title}\n{body}"), at)
    assert made is not None
    return made


def run(index: NearDupIndex, items: list[SynItem]) -> dict[str, str]:
    """Exact dedup by URL/text as ingest does, then near-dup; returns URL -> id of the original."""
    seen: dict[str, str] = {}
    dup_of: dict[str, str] = {}
    for item in items:
        keys = [item.id, unicodedata.normalize("NFKC", item.title + item.body)]
        hit = next((seen[k] for k in keys if k in seen), None)
        if hit is None:
            made = fp(index, item.title, item.body, item.lang, item.published_at)
            match = index.match(made)
            if match is None:
                index.add(item.id, made)
                hit = None
            else:
                hit = match.original
            for key in keys:
                seen.setdefault(key, hit or item.id)
        if hit is not None:
            dup_of[item.url] = hit
    return dup_of


def test_generator_is_seeded_and_realistic() -> None:
    items = generate(600, seed=11)
    assert items == generate(600, seed=11) and items != generate(600, seed=12)
    roles = Counter(i.role for i in items)
    assert 0.5 < roles["copy"] / len(items) < 0.75 and roles["followup"] > 10
    assert [i.published_at for i in items] == sorted(i.published_at for i in items)
    assert Counter(i.lang for i in items).keys() == {"en", "zh"}
    variants = Counter(i.variant for i in items if i.role == "copy")
    assert variants["rewrite"] > variants["verbatim"] + variants["tracking"] > 0
    zh_copies = [i for i in items if i.lang == "zh" and i.role == "copy"]
    assert any(fingerprint_text(i.title) != i.title.casefold() for i in zh_copies)  # some are traditional


def test_recall_and_precision_on_the_syndicated_test_set() -> None:
    items = generate(3000, seed=5)
    score = evaluate(items, run(NearDupIndex(), items))
    assert score.recall >= 0.9 and score.precision >= 0.95 and score.rewrite_recall >= 0.9
    assert score.copies > 1500


def test_exact_dedup_alone_misses_the_rewrites() -> None:
    items = generate(1500, seed=5)
    score = evaluate(items, run(NearDupIndex(threshold=1.0, strong_threshold=1.0), items))
    assert score.rewrite_recall < 0.2 and score.precision == 1.0


def test_traditional_and_simplified_copies_match() -> None:
    import opencc

    index = NearDupIndex()
    index.add("orig", fp(index, "极光汽车召回4.8万辆SUV 电池存在起火隐患", BODY_ZH, "zh"))
    for config in ("s2t", "s2hk", "s2tw"):
        converter = opencc.OpenCC(config)
        title, body = converter.convert("极光汽车召回4.8万辆SUV 电池存在起火隐患"), converter.convert(BODY_ZH)
        assert title != "极光汽车召回4.8万辆SUV 电池存在起火隐患"
        match = index.match(fp(index, title, body, "zh", T0 + timedelta(hours=1)))
        assert match is not None and match.original == "orig" and match.similarity > 0.9


def test_reordered_bylined_copy_matches_and_other_story_does_not() -> None:
    index = NearDupIndex()
    index.add("orig", fp(index, "Aurora Motors recalls 48,000 SUVs", BODY_EN))
    first, second = BODY_EN.split("\n")
    copy = f"By Maria Lindqvist | Market Pulse\n{second}\n{first}\nReporting by Tom Reilly; Editing by Chen Wei"
    match = index.match(fp(index, "UPDATE 1-Aurora Motors recalls 48,000 SUVs", copy, at=T0 + timedelta(hours=3)))
    assert match is not None and match.original == "orig"
    other = BODY_EN.replace("recall 48,000 Lumina SUVs because a battery module may overheat while charging",
                            "cut 2,000 jobs as it moves production of Lumina SUVs to its plant in Seoul")
    assert index.match(fp(index, "Aurora Motors to cut 2,000 jobs", other)) is None


def test_template_stories_about_other_companies_are_not_copies() -> None:
    index = NearDupIndex()
    body = "All {n} nominees won more than 90% of the votes cast, according to a regulatory filing. " \
           "The board also approved a dividend of $0.42 a share, payable on March 28."
    index.add("kstl", fp(index, "Kestrel Cloud ($KSTL) shareholders re-elect board at annual meeting",
                         body.format(n=9)))
    # Same template, another company: the title differs beyond a prefix.
    assert index.match(fp(index, "Jinhai Securities shareholders re-elect board at annual meeting",
                          body.format(n=7))) is None
    # Same words and title, but a disjoint ticker: another company's post.
    assert index.match(fp(index, "$NWBK shareholders re-elect board at annual meeting", body.format(n=9))) is None
    # A rewritten headline over a near-identical article is still a copy.
    article = BODY_EN + "\n" + LONGER
    index.add("aurm", fp(index, "Aurora Motors recalls 48,000 SUVs", article))
    match = index.match(fp(index, "Battery fire risk forces Lumina recall at Aurora", article))
    assert match is not None and match.original == "aurm" and match.similarity >= 0.85


MARKET_EN = ("Shares of Aurora Motors {moved} on Tuesday after the company reported quarterly results. Analysts "
             "said demand for electric vehicles stayed strong while margins held steady, and investors watched "
             "for guidance on new orders.")
MARKET_ZH = "{moved}。公司今日公告称，营业收入同比增长，净利润符合市场预期。分析师表示，新能源汽车销量持续增长，电池业务毛利率保持稳定，市场关注后续订单情况。"


@pytest.mark.parametrize(("first", "second", "lang"), [
    (("Aurora Motors shares +5%", MARKET_EN.format(moved="moved +5%")),
     ("Aurora Motors shares -5%", MARKET_EN.format(moved="moved -5%")), "en"),
    (("Aurora Motors Q3 revenue up 12%", MARKET_EN.format(moved="rose 12% in Q3")),
     ("Aurora Motors Q4 revenue up 12%", MARKET_EN.format(moved="rose 12% in Q4")), "en"),
    (("宁德时代三季度净利润增长12%", MARKET_ZH.format(moved="三季度净利润增长12%")),
     ("宁德时代四季度净利润增长12%", MARKET_ZH.format(moved="四季度净利润增长12%")), "zh"),
    (("宁德时代获增持评级", MARKET_ZH.format(moved="获增持评级")),
     ("宁德时代获减持评级", MARKET_ZH.format(moved="获减持评级")), "zh"),
])
def test_templated_stories_with_other_facts_are_not_copies(
    first: tuple[str, str], second: tuple[str, str], lang: str,
) -> None:
    """A sign, a quarter or an upgrade against a downgrade: letters and digits alone match these
    (similarity 0.9-1.0), the titles' facts tell them apart, so neither report is dropped."""
    index = NearDupIndex()
    index.add("first", fp(index, *first, lang=lang))
    other = fp(index, *second, lang=lang)
    assert index.match(other) is None
    # without the facts (a fingerprint stored before they were kept) the pair still matches
    unknown = Fingerprint.build(other.signature, other.title, other.hints, other.published, other.bands)
    assert index.match(unknown) is not None


@pytest.mark.parametrize(("title", "copy_title", "lang"), [
    ("Aurora Motors shares fall 5%", "UPDATE 1-Aurora Motors shares fall 5%", "en"),
    ("宁德时代股价跌5%", "【财联社8日讯】宁德时代股价跌5%", "zh"),
])
def test_copies_with_a_prefix_that_adds_a_number_still_match(title: str, copy_title: str, lang: str) -> None:
    body = MARKET_EN.format(moved="fell 5%") if lang == "en" else MARKET_ZH.format(moved="股价下跌5%")
    index = NearDupIndex()
    index.add("orig", fp(index, title, body, lang=lang))
    match = index.match(fp(index, copy_title, body, lang=lang))
    assert match is not None and match.original == "orig"


def test_horizon_and_eviction() -> None:
    index = NearDupIndex(horizon=timedelta(hours=48))
    index.add("orig", fp(index, "Aurora Motors recalls 48,000 SUVs", BODY_EN))
    late = fp(index, "Aurora Motors recalls 48,000 SUVs", BODY_EN + " Updated.", at=T0 + timedelta(hours=49))
    assert index.match(late) is None  # outside the horizon
    index.add("later", fp(index, "Pacific Grid Energy wins permit", "Regulators approved the wind farm " * 5,
                          at=T0 + timedelta(hours=50)))
    assert "orig" not in index and "later" in index and len(index) == 1  # evicted as the stream moved on
    index.remove("later")
    index.remove("unknown")
    assert len(index) == 0


def test_short_items_are_left_to_exact_dedup() -> None:
    index = NearDupIndex(min_shingles=24)
    assert index.fingerprint("$AURM to the moon", "", "en", ("$AURM",), T0) is None


def test_fingerprints_are_deterministic_and_round_trip() -> None:
    a, b = Fingerprinter(), Fingerprinter()
    one = a.fingerprint("Aurora Motors recalls SUVs", BODY_EN, "en", ["$AURM"], T0.timestamp())
    two = b.fingerprint("Aurora Motors recalls SUVs", BODY_EN, "en", ["$AURM"], T0.timestamp())
    assert one is not None and two is not None
    assert (one.signature == two.signature).all() and one.bands == two.bands
    signature, title, hints, facts = one.to_bytes()
    again = Fingerprint.from_bytes(signature, title, hints, one.published, facts)
    assert (again.signature == one.signature).all() and again.title_grams == one.title_grams
    assert again.facts == one.facts == "|"
    assert again.hints == {"$AURM"} and again.title == title_key("Aurora Motors recalls SUVs")


def test_fingerprint_text_ignores_case_punctuation_width_and_script() -> None:
    assert fingerprint_text("Aurora-Motors, RECALLS!") == "auroramotorsrecalls"
    assert fingerprint_text("極光汽車（ＡＵＲＭ）召回") == "极光汽车aurm召回"
    hashes = shingle_hashes(np.frombuffer("abcdef".encode("utf-32-le"), dtype=np.uint32), 5)
    assert len(hashes) == 2 and hashes.dtype == np.uint64 and len(set(hashes.tolist())) == 2
    assert len(shingle_hashes(np.frombuffer(b"", dtype=np.uint32), 5)) == 0


def test_bad_band_settings() -> None:
    with pytest.raises(ValueError, match="multiple of bands"):
        NearDupIndex(num_perm=50, bands=16)
