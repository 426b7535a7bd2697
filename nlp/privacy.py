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


def _sub(pattern: re.Pattern[str], kind: str, text: str, counts: Counter[str], check: object = None) -> str:
    def replace(match: re.Match[str]) -> str:
        value = match.group(0)
        if callable(check) and not check(value):
            return value
        counts[kind] += 1
        return f"[{kind}]"

    return pattern.sub(replace, text)


def _card(value: str) -> bool:
    digits = re.sub(r"[ -]", "", value)
    return 13 <= len(digits) <= 19 and luhn_ok(digits) and not is_cn_id(digits)


def mask_pii_counts(text: str) -> Masked:
    """Mask personal data in ``text``; see the module docstring for what counts."""
    if not text:
        return Masked(text, {})
    counts: Counter[str] = Counter()
    out = _sub(EMAIL, "EMAIL", text, counts)
    out = _sub(ID18, "ID", out, counts, is_cn_id)
    out = _sub(ID15, "ID", out, counts, is_cn_id)
    out = _sub(MOBILE, "PHONE", out, counts)
    out = _sub(CARD, "CARD", out, counts, _card)
    out = _sub(LANDLINE, "PHONE", out, counts)
    out = _sub(INTERNATIONAL, "PHONE", out, counts, lambda v: 8 <= sum(c.isdigit() for c in v) <= 15)
    return Masked(out, dict(counts))


def mask_pii(text: str) -> str:
    """``text`` with e-mails, Chinese ID numbers, card numbers and phone numbers replaced by placeholders."""
    return mask_pii_counts(text).text
