"""Titles' facts: the numbers and direction that tell templated stories apart (ingest.facts)."""

from __future__ import annotations

import pytest

from ingest.facts import contradict, title_facts


@pytest.mark.parametrize(("title", "facts"), [
    ("Aurora Motors shares +5%", "+5|"),
    ("Aurora Motors shares \u22125%", "-5|"),  # the minus sign
    ("UPDATE 1-Aurora Motors shares fall 5%", "5|down"),  # a wire's update counter is no fact
    ("Aurora -5% at 10:30", "-5|"),  # nor a clock time
    ("Aurora Q3 revenue up 12%", "3 12|up"),
    ("2026-03-02: Aurora to cut 1,000 jobs", "2026 03 02 1000|down"),
    ("宁德时代三季度净利润增长12%", "12 3|up"),
    ("宁德时代获减持评级", "|down"),
    ("ＡＵＲＯＲＡ　ＳＨＡＲＥＳ　ＲＩＳＥ　５％", "5|up"),  # full-width
    ("Aurora falls, erasing gains", "|up down"),
    ("Aurora Motors recalls SUVs", "|"),
    ("极光汽车召回4.8万辆SUV", "48000|"),  # a number's unit is part of it
    ("極光汽車召回4.8萬輛SUV", "48000|"),
    ("Aurora raises $1.2bn, sells 48k shares", "1200000000 48000|up"),
])
def test_title_facts(title: str, facts: str) -> None:
    assert title_facts(title) == facts


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("Aurora shares +5%", "Aurora shares -5%", True),
    ("Aurora Q3 revenue up 12%", "Aurora Q4 revenue up 12%", True),
    ("Aurora upgraded", "Aurora downgraded", True),
    ("宁德时代股价涨5%", "宁德时代股价跌5%", True),
    ("Aurora shares hit record high", "Aurora shares hit record low", True),
    ("Aurora Q3 loss widens", "Aurora Q3 loss narrows", True),
    ("Aurora results above forecasts", "Aurora results below forecasts", True),
    ("Regulator approves Aurora deal", "Regulator rejects Aurora deal", True),
    ("宁德时代提高全年指引", "宁德时代降低全年指引", True),
    ("Aurora shares fall 5%", "UPDATE 1-Aurora shares fall 5%", False),  # a copy may add numbers
    ("UPDATE 1-Aurora shares fall 5%", "UPDATE 2-Aurora shares fall 5% at 10:30", False),
    ("Aurora shares fall 5%", "Aurora shares slump 5%", False),  # a rewritten headline
    ("Aurora shares fall 5%", "Aurora shares fall 5 per cent", False),
    ("Aurora falls, erasing gains", "Aurora falls", False),  # not a rise against a fall
    ("Aurora recalls SUVs", "Aurora shares fall 5%", False),  # one title states no numbers
    ("Aurora shares +5% after results", "Aurora shares jump 5% after results", False),  # a sign is a direction
    ("Aurora shares -5% after results", "Aurora shares fall 5% after results", False),
    ("Aurora shares +5% after results", "Aurora shares fall 5% after results", True),
    ("Aurora Q3 profit beats estimates", "Aurora Q3 profit misses estimates", True),  # "profit" is a noun here
    ("Aurora Q3 loss narrows, revenue rises", "Aurora Q3 loss widens, revenue falls", True),
    ("Aurora swings to Q3 profit", "Aurora swings to Q3 loss", True),
    ("宁德时代三季度盈利增长", "宁德时代三季度盈利下降", True),
    ("寧德時代股價漲5%", "寧德時代股價跌5%", True),  # traditional characters
    ("寧德時代獲增持評級", "寧德時代獲減持評級", True),
    ("寧德時代三季度盈利", "寧德時代三季度虧損", True),
    ("高盛上调宁德时代目标价", "高盛下调宁德时代目标价", True),
    ("宁德时代三季度业绩超预期", "宁德时代三季度业绩不及预期", True),
    ("宁德时代股价走高", "宁德时代股价走低", True),
    ("Aurora shares gain 2%", "Aurora shares slip 2%", True),
    ("Aurora hikes dividend", "Aurora slashes dividend", True),
    ("Aurora lifts forecast", "Aurora trims forecast", True),
    ("Aurora shares fall 5.0%", "Aurora shares fall 5%", False),  # one number, written two ways
    ("极光汽车召回4.8万辆SUV", "极光汽车召回48,000辆SUV", False),
    ("极光汽车预计召回费用8亿元", "极光汽车预计召回费用80000万元", False),
    ("Aurora prices $1.2 billion bond", "Aurora prices $1,200 mln bond", False),
    ("极光汽车召回4.8万辆SUV", "极光汽车召回4.8亿辆SUV", True),
    ("2026-03-03: Aurora to recall 48,000 SUVs", "Aurora to recall 48,000 SUVs (March 3)", False),
])
def test_contradict(a: str, b: str, expected: bool) -> None:
    assert contradict(title_facts(a), title_facts(b)) is expected
    assert contradict(title_facts(b), title_facts(a)) is expected


def test_facts_stored_with_per_cent_signs_compare_with_todays() -> None:
    """State files written before 3e36a47 hold numbers as "5%"."""
    assert not contradict("5%|down", title_facts("UPDATE 1-Aurora shares fall 5%"))
    assert contradict("+5%|", title_facts("Aurora shares -5%"))


def test_unknown_facts_never_contradict() -> None:
    assert not contradict(None, title_facts("Aurora shares -5%"))
    assert not contradict(title_facts("Aurora shares +5%"), None)
