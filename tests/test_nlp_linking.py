"""Company linking: names, Chinese names, aliases, tickers and cashtags; word boundaries; hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from finsentinel.errors import ConfigError
from nlp.linking import EntityLinker, Watchlist


@pytest.fixture(scope="module")
def linker() -> EntityLinker:
    return EntityLinker(Watchlist.load())


def test_packaged_watchlist_loads() -> None:
    watchlist = Watchlist.load()
    assert len(watchlist.companies) == 8 and "packaged" in watchlist.source
    assert {c.id for c in watchlist.companies} >= {"aurora-motors", "meridian-foods"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Meridian Foods recalls frozen dumplings", ("meridian-foods",)),
        ("Meridian's chief executive resigns", ("meridian-foods",)),
        ("MERIDIAN cuts prices", ("meridian-foods",)),
        ("Meridianx is a different company", ()),
        ("Shares of $AURM jump", ("aurora-motors",)),
        ("AURM, PGEX lead gains", ("aurora-motors", "pacific-grid")),
        ("AURMX fund rebalances", ()),
        ("Listed as 9981.HK in Hong Kong", ("aurora-motors",)),
        ("code 6009981 is unrelated", ()),
        ("极光汽车遭证监会立案调查，股价暴跌", ("aurora-motors",)),
        ("隼云科技与北风银行签署合作协议", ("kestrel-cloud", "northwind-bank")),
        ("子午食品（002988.SZ）发布公告", ("meridian-foods",)),
        ("极光AURM今日大涨", ("aurora-motors",)),
        ("Ｍｅｒｉｄｉａｎ　Ｆｏｏｄｓ full-width", ("meridian-foods",)),
        ("Nothing to see here", ()),
        ("", ()),
    ],
)
def test_link(linker: EntityLinker, text: str, expected: tuple[str, ...]) -> None:
    assert linker.link(text) == expected


def test_hints_add_companies_by_id_name_or_cashtag(linker: EntityLinker) -> None:
    assert linker.link("no names here", hints=("lumen-pharma", "$KSTL", "Northwind Bank", "unknown")) == (
        "kestrel-cloud",
        "lumen-pharma",
        "northwind-bank",
    )
    assert linker.link("Aurora Motors", hints=("aurora-motors",)) == ("aurora-motors",)


def test_shared_alias_links_every_company_that_has_it() -> None:
    watchlist = Watchlist.from_dict(
        {
            "companies": [
                {"id": "a", "name": "Alpha Holdings", "aliases": ["Alpha"]},
                {"id": "b", "name": "Alpha Bank", "aliases": ["Alpha"]},
            ]
        }
    )
    assert EntityLinker(watchlist).link("Alpha reports") == ("a", "b")


def test_letter_tickers_match_only_in_capitals_or_as_cashtags() -> None:
    watchlist = Watchlist.from_dict(
        {
            "companies": [
                {"id": "onsemi", "name": "ON Semiconductor", "tickers": ["ON"]},
                {"id": "c3", "name": "C3.ai", "aliases": ["C3 AI"], "tickers": ["AI", "AI.N"]},
            ]
        }
    )
    linker = EntityLinker(watchlist)
    assert linker.link("Stocks rise on Monday") == ()  # the word 'on' is not ticker ON
    assert linker.link("Banks bet on ai to cut costs") == ()
    assert linker.link("Investors pile into ai.n") == ()
    assert linker.link("ON and AI lead chip gains") == ("c3", "onsemi")
    assert linker.link("$on jumps, $ai falls") == ("c3", "onsemi")  # a cashtag in any case
    assert linker.link("ＯＮ rallies; AI.N slips") == ("c3", "onsemi")  # full-width capitals too
    assert linker.link("c3 ai wins a contract") == ("c3",)  # names and aliases stay case-insensitive
    assert linker.link("shares", hints=("ai",)) == ("c3",)  # hints name companies in any case


def test_a_name_inside_another_companys_longer_name_links_only_the_longer() -> None:
    watchlist = Watchlist.from_dict(
        {
            "companies": [
                {"id": "pingan", "name": "Ping An Insurance", "name_zh": "中国平安", "aliases": ["平安", "Ping An"]},
                {"id": "pingan-bank", "name": "Ping An Bank", "name_zh": "平安银行"},
            ]
        }
    )
    linker = EntityLinker(watchlist)
    assert linker.link("平安银行发布年报") == ("pingan-bank",)
    assert linker.link("Ping An Bank profit rises") == ("pingan-bank",)
    assert linker.link("平安银行与中国平安签约") == ("pingan", "pingan-bank")  # two mentions
    assert linker.link("Ping An and Ping An Bank") == ("pingan", "pingan-bank")
    assert linker.link("平安保险") == ("pingan",)


def test_empty_watchlist_links_nothing() -> None:
    assert EntityLinker(Watchlist.from_dict({})).link("Aurora Motors", hints=("aurora-motors",)) == ()


def test_watchlist_file(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "companies:\n  - id: acme\n    name: Acme\n    name_zh: 顶点\n    tickers: [ACME]\n", encoding="utf-8"
    )
    watchlist = Watchlist.load(path)
    assert watchlist.source == str(path) and EntityLinker(watchlist).link("顶点公告") == ("acme",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("companies: [", "not valid YAML"),
        ("- just a list", "expected a mapping"),
        ("companies:\n  - name: No Id\n", r"companies\.0\.id"),
        ("companies:\n  - id: x\n    name: X\n    tickers: [600998]\n", r"quote numeric tickers"),
        ("companies:\n  - id: Bad Id\n    name: X\n", r"companies\.0\.id"),
        ("companies:\n  - id: x\n    name: X\n    sector: tech\n", r"sector"),
        ("companies:\n  - id: x\n    name: X\n  - id: x\n    name: Y\n", r"repeated: \['x'\]"),
    ],
)
def test_bad_watchlist_is_a_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        Watchlist.load(path)


def test_missing_watchlist_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read watchlist"):
        Watchlist.load(tmp_path / "absent.yaml")
