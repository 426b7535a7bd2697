"""Desensitisation: personal data masked out of texts before they are classified or indexed.

:func:`mask_pii` replaces e-mail addresses, Chinese resident ID numbers, payment card numbers and
phone numbers with ``[EMAIL]``, ``[ID]``, ``[CARD]``, ``[PHONE]``. Digit runs are checked, not just
matched, so that stock codes, prices, dates and order numbers survive:

* ID numbers: 18 characters with a valid GB 11643 check digit (ISO 7064 MOD 11-2) and a real birth
  date, or the old 15-digit form with a real birth date;
* card numbers: 13-19 digits (optionally in groups split by spaces or hyphens) passing the Luhn check;
* phones: mainland mobiles (``1[3-9]`` + 9 digits, optionally ``+86``/``0086`` and separators),
  landlines with an area code (``010-12345678``, ``(0755) 8888 6666``), and ``+`` international
  numbers of 8-15 digits.

Full-width characters (``１３８１２３４５６７８``, ``ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ``, as typed with a Chinese input
method) and ideographic spaces are matched as their ASCII forms; the text around a masked span is
kept as it was.

Hand-written: the available PII libraries (e.g. Presidio) pull in spaCy models and do not know
Chinese ID numbers; these four patterns are short and tested.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date

EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
ID18 = re.compile(r"(?<![0-9A-Za-z])\d{6}(?:18|19|20)\d{2}\d{2}\d{2}\d{3}[0-9Xx](?![0-9A-Za-z])")
ID15 = re.compile(r"(?<![0-9A-Za-z])\d{6}\d{2}\d{2}\d{2}\d{3}(?![0-9A-Za-z])")
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
MOBILE = re.compile(r"(?<![\d+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
LANDLINE = re.compile(r"(?<!\d)(?:\(0\d{2,3}\)\s?|0\d{2,3}[ -])\d{3,4}[ -]?\d{4}(?!\d)")
INTERNATIONAL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ -]?\(?\d{1,4}\)?){2,5}(?!\d)")

_FOLD = {**{code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}, 0x3000: ord(" ")}
"""Full-width ASCII forms and the ideographic space to ASCII: one character for one, so positions agree."""

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True, slots=True)
class Masked:
    """A masked text and how many spans of each kind were replaced."""

    text: str
    counts: dict[str, int]

    @property
    def changed(self) -> bool:
        """True when anything was masked."""
        return bool(self.counts)


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def is_cn_id(candidate: str) -> bool:
    """A syntactically valid mainland resident ID number (18 with check digit, or 15 old-style)."""
    if len(candidate) == 18:
        digits = candidate[:17]
        if not digits.isdigit():
            return False
        check = _ID_CHECK[sum(int(d) * w for d, w in zip(digits, _ID_WEIGHTS, strict=True)) % 11]
        return candidate[17].upper() == check and _valid_date(
            int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14])
        )
    if len(candidate) == 15 and candidate.isdigit():
        return _valid_date(1900 + int(candidate[6:8]), int(candidate[8:10]), int(candidate[10:12]))
    return False


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _sub(
    pattern: re.Pattern[str], kind: str, texts: tuple[str, str], counts: Counter[str], check: object = None
) -> tuple[str, str]:
    """Replace the checked matches of ``pattern`` in the folded text, and the same spans in the original."""
    text, folded = texts
    kept, kept_folded, last = [], [], 0
    for match in pattern.finditer(folded):
        if callable(check) and not check(match.group(0)):
            continue
        counts[kind] += 1
        kept += [text[last : match.start()], f"[{kind}]"]
        kept_folded += [folded[last : match.start()], f"[{kind}]"]
        last = match.end()
    if not kept:
        return texts
    return "".join(kept) + text[last:], "".join(kept_folded) + folded[last:]


def _card(value: str) -> bool:
    digits = re.sub(r"[ -]", "", value)
    return 13 <= len(digits) <= 19 and luhn_ok(digits) and not is_cn_id(digits)


def mask_pii_counts(text: str) -> Masked:
    """Mask personal data in ``text``; see the module docstring for what counts."""
    if not text:
        return Masked(text, {})
    counts: Counter[str] = Counter()
    texts = (text, text.translate(_FOLD))
    texts = _sub(EMAIL, "EMAIL", texts, counts)
    texts = _sub(ID18, "ID", texts, counts, is_cn_id)
    texts = _sub(ID15, "ID", texts, counts, is_cn_id)
    texts = _sub(MOBILE, "PHONE", texts, counts)
    texts = _sub(CARD, "CARD", texts, counts, _card)
    texts = _sub(LANDLINE, "PHONE", texts, counts)
    texts = _sub(INTERNATIONAL, "PHONE", texts, counts, lambda v: 8 <= sum(c.isdigit() for c in v) <= 15)
    return Masked(texts[0], dict(counts))


def mask_pii(text: str) -> str:
    """``text`` with e-mails, Chinese ID numbers, card numbers and phone numbers replaced by placeholders."""
    return mask_pii_counts(text).text
