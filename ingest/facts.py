"""The facts of a headline that syndicated copies share and different stories do not.

Near-duplicate matching compares letters and digits (:mod:`ingest.fingerprint`), so two
templated stories one word or sign apart look like copies of each other: "shares +5%" and
"shares -5%" (signs are not letters), "Q3 revenue up 12%" and "Q4 revenue up 12%", "获增持评级"
and "获减持评级" (an upgrade and a downgrade). Dropping one of them as a copy loses the news a risk
desk watches for. So each title's facts are kept beside its fingerprint: its numbers (with their
sign and unit: "4.8万" is 48000; a wire's "UPDATE 2" counter and clock times are not facts) and
the direction it reports (up, down). Two titles contradict when both state numbers and neither
title's numbers hold the other's (a copy may add some: a date tag), or when one reports only a
rise and the other only a fall (a sign counts as one).

Hand-written because no library matches this narrow need: a short regular expression for numbers
and a small bilingual lexicon of direction words, which only ever separate near-identical titles.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

__all__ = ["contradict", "title_facts"]

# A sign counts only where it is not a hyphen inside a word or a date ("UPDATE 1-Aurora", "2026-03").
# A unit after a number scales it, so "4.8万" and "48,000", "$1.2bn" and "$1,200 million" are one number.
_NUMBER = re.compile(r"(?:(?<![0-9a-z])([+\-\u2212]))?(\d+(?:[.,]\d+)*)"
                     r"(?:\s?(thousand|million|billion|trillion|mln|bln|mn|bn|tn)(?![a-z])|([km])(?![a-z])"
                     r"|([万萬][亿億]|[千百][亿億]|[千百][万萬]|[亿億万萬]))?")
_SCALE = {"thousand": 3, "k": 3, "million": 6, "mln": 6, "mn": 6, "m": 6, "billion": 9, "bln": 9, "bn": 9,
          "trillion": 12, "tn": 12, "万亿": 12, "千亿": 11, "百亿": 10, "亿": 8, "千万": 7, "百万": 6, "万": 4}
_SCALE |= {unit.translate(str.maketrans("万亿", "萬億")): n for unit, n in _SCALE.items()}  # traditional
_SIGN = {"": "", "+": "+", "-": "-", "\u2212": "-"}
_NOT_FACTS = re.compile(r"\b(?:update|corrected|refile)\s*\d+\b|(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?!\d)")
_QUARTER_ZH = re.compile(r"([一二三四])季度")
_QUARTER_DIGIT = {"一": "1", "二": "2", "三": "3", "四": "4"}
_WORD = re.compile(r"[a-z]+")

_UP_EN = frozenset(
    "rise rises rose risen rising up gain gains gained jump jumps jumped surge surges surged soar soars "
    "soared climb climbs climbed rally rallies rallied beat beats raise raises raised upgrade upgrades "
    "upgraded higher boost boosts boosted increase increases increased grow grows grew "
    "buy outperform overweight hike hikes hiked lift lifts lifted advance advances advanced high above "
    "positive approve approves approved narrow narrows narrowed".split()
)
_DOWN_EN = frozenset(
    "fall falls fell fallen falling down drop drops dropped slide slides slid slump slumps slumped "
    "plunge plunges plunged tumble tumbles tumbled sink sinks sank decline declines declined miss misses "
    "missed cut cuts downgrade downgrades downgraded lower decrease decreases decreased shrink shrinks "
    "shrank sell underperform underweight lose loses lost losing slip slips slipped dip dips dipped trim trims "
    "trimmed slash slashes slashed reduce reduces reduced low below negative reject rejects rejected "
    "widen widens widened".split()
)
# Chinese by substring, simplified and traditional (titles' facts are taken before script folding).
_UP_ZH = ("涨", "漲", "升", "增", "利好", "买入", "買入", "跑赢", "跑贏", "上调", "上調", "上修", "走高", "看多", "提高",
          "超预期", "超預期", "高于预期", "高於預期", "好于预期", "好於預期")
_DOWN_ZH = ("跌", "降", "减", "減", "利空", "卖出", "賣出", "跑输", "跑輸", "下调", "下調", "下修", "走低", "看空",
            "贬", "貶", "不及预期", "不及預期", "低于预期", "低於預期", "逊于预期", "遜於預期")
# A profit or a loss is a direction only where no word above says one: in "Q3 profit misses
# estimates" or "盈利下降" it names what rose or fell.
_UP_NOUNS = (frozenset({"profit", "profits"}), ("盈",))
_DOWN_NOUNS = (frozenset({"loss", "losses"}), ("亏", "虧"))


def _numbers(text: str) -> list[str]:
    found = [_SIGN[sign] + _scaled(digits.replace(",", ""), word or letter or zh)
             for sign, digits, word, letter, zh in _NUMBER.findall(text)]
    return found + [_QUARTER_DIGIT[q] for q in _QUARTER_ZH.findall(text)]


def _scaled(digits: str, unit: str) -> str:
    if not unit:
        return digits
    try:
        return format(Decimal(digits).scaleb(_SCALE[unit]).normalize(), "f")
    except InvalidOperation:  # "1.2.3": not one number
        return digits


def _direction(text: str) -> str:
    words = set(_WORD.findall(text))
    up = bool(words & _UP_EN) or any(w in text for w in _UP_ZH)
    down = bool(words & _DOWN_EN) or any(w in text for w in _DOWN_ZH)
    if not (up or down):
        up = bool(words & _UP_NOUNS[0]) or any(w in text for w in _UP_NOUNS[1])
        down = bool(words & _DOWN_NOUNS[0]) or any(w in text for w in _DOWN_NOUNS[1])
    return " ".join(name for name, flag in (("up", up), ("down", down)) if flag)


def title_facts(title: str) -> str:
    """A title's facts as one string, ``"<numbers>|<direction>"``: its numbers in order of first
    appearance (sign kept; not a wire's "UPDATE 2" counter or a clock time, which copies change)
    and ``up``, ``down``, both or neither. Stored with fingerprints."""
    text = unicodedata.normalize("NFKC", title).casefold()
    numbers = _numbers(_NOT_FACTS.sub(" ", text))
    return " ".join(dict.fromkeys(numbers)) + "|" + _direction(text)


def _compared(facts: str) -> tuple[set[str], str]:
    """The numbers of stored facts as compared (no sign, per cent sign or padding zeros: "+5%", "05"
    and "5.0" are one number) and the direction, a sign counting as a rise or fall ("+5%" is "up 5%")."""
    numbers, _, direction = facts.partition("|")
    values: set[str] = set()
    words = set(direction.split())
    for number in numbers.split():
        sign, digits = number[0] if number[0] in "+-" else "", number.lstrip("+-").rstrip("%")
        if sign:
            words.add("up" if sign == "+" else "down")
        whole, dot, fraction = digits.partition(".")
        fraction = fraction.rstrip("0")
        values.add((whole.lstrip("0") or "0") + ("." + fraction if fraction else ""))
    return values, " ".join(name for name in ("up", "down") if name in words)


def contradict(a: str | None, b: str | None) -> bool:
    """Whether two titles' :func:`title_facts` tell different stories (None: not known, no)."""
    if a is None or b is None:
        return False
    left, direction_a = _compared(a)
    right, direction_b = _compared(b)
    if left and right and not (left <= right or right <= left):
        return True
    return {direction_a, direction_b} == {"up", "down"}
