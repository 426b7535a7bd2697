"""Pure text and time normalisation for ingested items.

* :func:`html_to_text` turns feed HTML into plain text;
* :func:`clean_text` applies NFKC (full-width → half-width), drops control and zero-width
  characters and collapses whitespace;
* :func:`detect_lang` answers ``zh``, ``en`` or ``other``;
* :func:`parse_time` reads the time formats feeds use and returns an aware UTC datetime;
* :func:`entity_hints` finds cashtags and exchange tickers;
* :func:`cap_body` truncates long bodies with a visible marker.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langdetect import DetectorFactory, LangDetectException, detect_langs

from finsentinel.errors import ConfigError

# langdetect samples features at random; a fixed seed makes its answers reproducible.
DetectorFactory.seed = 0

TRUNCATION_MARK = " […]"

_BLOCK_TAGS = frozenset(
    "p div br li ul ol tr table h1 h2 h3 h4 h5 h6 blockquote section article header footer pre hr".split()
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template"})
_INVISIBLE = re.compile("[\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*(?:\n\s*)+")
_SINGLE_NEWLINE = re.compile(r" ?\n ?")
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2}):?(\d{2})?$", re.I)

_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_KANA_HANGUL = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af\u1100-\u11ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_URL = re.compile(r"https?://\S+|www\.\S+", re.I)
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?![\w])")
_SUFFIXED = re.compile(r"(?<![\w.])(\d{4,6})\.(SH|SZ|HK|SS|BJ)(?![\w])", re.I)
_US_SUFFIXED = re.compile(r"(?<![\w.$])([A-Z]{1,5})\.(?:US|O|N|OQ)(?![\w])")  # 极光汽车(AURM.US)
_PREFIXED = re.compile(
    r"\b(?:NYSE|NASDAQ|Nasdaq|AMEX|HKEX|SEHK|SSE|SZSE)\s*:\s*([A-Z]{1,5}|\d{4,6})(?![\w])"
)
# Each Han character carries about a word; Latin words average about three letters of the
# counts below, so Han characters are weighted 3 against Latin letters.
_HAN_WEIGHT = 3
_ZH_SHARE = 0.3

_NAIVE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日%H:%M",
)


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment, one line per block element.

    Hand-written on the standard library's tolerant parser: feed bodies are short fragments
    (already sanitised by feedparser for RSS) and only their text is wanted, so a DOM library
    such as BeautifulSoup/lxml would add a dependency without adding correctness here.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, block elements as line breaks."""
    if "<" not in html and "&" not in html:
        return clean_text(html, keep_lines=True)
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return clean_text("".join(parser.parts), keep_lines=True)


def clean_text(text: str, keep_lines: bool = False) -> str:
    """NFKC-normalise, drop invisible characters and collapse whitespace.

    With ``keep_lines`` paragraph breaks survive as one newline; otherwise the result is one line.
    """
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).replace("\r", "\n").replace("\t", " ")
    if not keep_lines:
        return " ".join(text.split())
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text)
    return _SINGLE_NEWLINE.sub("\n", text).strip()


def detect_lang(text: str) -> str:
    """``zh``, ``en`` or ``other``.

    Han characters decide Chinese (kana or hangul mean Japanese/Korean: ``other``); Latin-script
    text goes to ``langdetect`` (seeded), with URLs, cashtags and tickers removed first.
    """
    stripped = _URL.sub(" ", text)
    for pattern in (_CASHTAG, _SUFFIXED, _US_SUFFIXED, _PREFIXED):
        stripped = pattern.sub(" ", stripped)
    han = len(_HAN.findall(stripped))
    kana = len(_KANA_HANGUL.findall(stripped))
    latin = len(_LATIN.findall(stripped))
    if kana and kana * 10 >= han:
        return "other"
    if han and _HAN_WEIGHT * han / (_HAN_WEIGHT * han + latin) >= _ZH_SHARE:
        return "zh"
    if latin < 3:
        return "other"
    try:
        best = detect_langs(stripped)[0]
    except LangDetectException:
        return "other"
    if best.lang == "en":
        return "en"
    return "zh" if best.lang.startswith("zh") else "other"


def resolve_tz(name: str) -> tzinfo:
    """A time zone from an IANA name (``Asia/Shanghai``) or a fixed offset (``+08:00``, ``UTC+8``)."""
    if name.strip().upper() in {"UTC", "GMT", "Z"}:
        return UTC
    match = _OFFSET.match(name.strip())
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r}: expected an IANA name such as Asia/Shanghai or an offset such as +08:00"
        ) from exc


def parse_time(value: object, default_tz: tzinfo) -> datetime | None:
    """Read a feed timestamp; return it in UTC, or None when it cannot be read.

    Accepts RFC 822 (RSS), ISO 8601, common naive layouts (``2026-03-02 17:05``,
    ``2026年03月02日 17:05``) and Unix epoch seconds or milliseconds. Times without an offset
    are taken to be in ``default_tz``, the source's configured zone.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str) or not value.strip():
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    if text.upper().endswith(" CST") and _is_china_time(default_tz):
        text = text[:-4] + " +0800"  # "CST" is China Standard Time in Chinese feeds, not US Central
    if re.fullmatch(r"\d{9,13}(?:\.\d+)?", text):
        return _from_epoch(float(text))
    parsed = _parse_rfc822(text) or _parse_iso(text) or _parse_naive(text)
    if parsed is None:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed.astimezone(UTC)


def _is_china_time(tz: tzinfo) -> bool:
    return tz.utcoffset(datetime(2026, 1, 1, tzinfo=UTC)) == timedelta(hours=8)


def _from_epoch(seconds: float) -> datetime | None:
    if seconds > 1e11:  # milliseconds
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_rfc822(text: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    # email.utils reads "-0000" and a missing zone alike as naive: both mean "zone unknown".
    return parsed


def _parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _parse_naive(text: str) -> datetime | None:
    for fmt in _NAIVE_FORMATS:
        try:
            return datetime.strptime(text, fmt)  # noqa: DTZ007 - the caller attaches the source's zone
        except ValueError:
            continue
    return None


def entity_hints(text: str) -> tuple[str, ...]:
    """Cashtags and exchange tickers, in order of appearance, once each.

    ``$aurm`` → ``$AURM``; ``600998.sh`` → ``600998.SH``; ``AURM.US`` and ``NYSE: PGEX`` → ``AURM``, ``PGEX``.
    """
    found: list[tuple[int, str]] = []
    found += [(m.start(), "$" + m.group(1).upper()) for m in _CASHTAG.finditer(text)]
    found += [(m.start(), f"{m.group(1)}.{m.group(2).upper()}") for m in _SUFFIXED.finditer(text)]
    found += [(m.start(), m.group(1)) for m in _US_SUFFIXED.finditer(text)]
    found += [(m.start(), m.group(1).upper()) for m in _PREFIXED.finditer(text)]
    return tuple(dict.fromkeys(hint for _, hint in sorted(found)))


def cap_body(body: str, max_chars: int) -> tuple[str, bool]:
    """``body`` cut to exactly ``max_chars`` characters ending in :data:`TRUNCATION_MARK`, and whether it was cut."""
    if len(body) <= max_chars:
        return body, False
    keep = max(0, max_chars - len(TRUNCATION_MARK))
    return (body[:keep] + TRUNCATION_MARK)[:max_chars], True


def is_truncated(body: str, max_chars: int) -> bool:
    """Whether ``body`` is the output of :func:`cap_body` cutting a longer text."""
    return len(body) == max_chars and body.endswith(TRUNCATION_MARK)
