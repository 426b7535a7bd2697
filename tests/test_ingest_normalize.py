"""Pure normalisation: HTML, NFKC, language, times, entity hints, body cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from finsentinel.errors import ConfigError
from ingest.normalize import (
    TRUNCATION_MARK,
    cap_body,
    clean_text,
    detect_lang,
    entity_hints,
    html_to_text,
    is_truncated,
    parse_time,
    resolve_tz,
)

SHANGHAI = resolve_tz("Asia/Shanghai")


def test_html_to_text_strips_tags_scripts_and_decodes_entities() -> None:
    html = "<div><p>Profit&nbsp;rose <b>12%</b> &amp; more</p><script>var x = 1;</script>" \
           "<style>p {color: red}</style><ul><li>one</li><li>two</li></ul>tail &lt;ok&gt;</div>"
    assert html_to_text(html) == "Profit rose 12% & more\none\ntwo\ntail <ok>"


@pytest.mark.parametrize(("html", "text"), [
    ("use x<![y to match", "use x<![y to match"),  # the stdlib parser: "unknown status keyword"
    ("<p>see <![ here</p>", "see <![ here"),  # "expected name token"
])
def test_html_to_text_survives_a_stray_marked_section_opener(html: str, text: str) -> None:
    # A post or body with "<![" that opens no marked section is text, not a parser crash that
    # would fail the whole fetch.
    assert html_to_text(html) == text


def test_html_to_text_keeps_plain_text_and_breaks() -> None:
    assert html_to_text("line one<br/>line two") == "line one\nline two"
    assert html_to_text("no markup at all") == "no markup at all"
    assert html_to_text("Yields < 4% for now") == "Yields < 4% for now"


def test_clean_text_folds_full_width_and_invisible_characters() -> None:
    assert clean_text("ＡＵＲＭ股价（２０２６）\u200b上涨１２％，\t 创  新高\ufeff") == "AURM股价(2026)上涨12%, 创 新高"
    assert clean_text("a\n\n\n b  \r\n c", keep_lines=True) == "a\nb\nc"
    assert clean_text("a\n\n b") == "a b"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Aurora Motors recalls 48,000 SUVs over battery fire risk", "en"),
        ("Aurora Motors (极光汽车) recalls 48,000 SUVs over battery fire risk", "en"),
        ("极光汽车召回4.8万辆Lumina SUV 电池存在起火隐患", "zh"),
        ("极光汽车(AURM.US)美股盘前暴跌逾20%", "zh"),
        ("$AURM $KSTL 今天又跌了", "zh"),
        ("$AURM down 20% premarket, not touching this", "en"),
        ("トヨタ自動車の株価が上昇した", "other"),
        ("삼성전자 주가가 상승했다", "other"),
        ("Les marchés européens ont clôturé en hausse mardi", "other"),
        ("12345 +3.2%", "other"),
        ("$KSTL $AURM", "other"),
        ("The company said that the results of the quarter were better than those of its rivals", "en"),
        ("Die Aktie fiel deutlich, nachdem das Unternehmen seine Prognose für das Jahr gesenkt hatte", "other"),
        ("Las acciones de la empresa cayeron tras la publicación de los resultados del trimestre", "other"),
        ("AURORA MOTORS RECALLS 48,000 SUVS OVER BATTERY FIRE RISK", "en"),
    ],
)
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


def test_detect_lang_is_deterministic() -> None:
    text = "Stocks slide as bond yields jump"
    assert len({detect_lang(text) for _ in range(20)}) == 1
    longer = "Stocks slide as bond yields jump\nThe 10-year Treasury yield rose, pressuring technology shares."
    assert {detect_lang(longer) for _ in range(20)} == {"en"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 02 Mar 2026 14:05:00 GMT", datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
        ("Mon, 02 Mar 2026 22:05:00 +0800", datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
        ("Mon, 02 Mar 2026 09:05:00 -0500", datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
        ("2026-03-02T22:05:00+08:00", datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
        ("2026-03-02T14:05:00Z", datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
        ("2026-03-02 22:05:00", datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),  # naive: the source's zone
        ("2026-03-02T22:05:00", datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
        ("2026年03月02日 22:05", datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
        ("２０２６-０３-０２ ２２:０５", datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
        (1772460300, datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
        (1772460300000, datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
        ("1772460300", datetime(2026, 3, 2, 14, 5, tzinfo=UTC)),
    ],
)
def test_parse_time_to_utc(value: object, expected: datetime) -> None:
    parsed = parse_time(value, SHANGHAI)
    assert parsed == expected and parsed is not None and parsed.tzinfo is UTC


def test_cst_means_china_time_only_for_chinese_sources() -> None:
    value = "Tue, 03 Mar 2026 17:04:00 CST"
    assert parse_time(value, SHANGHAI) == datetime(2026, 3, 3, 9, 4, tzinfo=UTC)
    assert parse_time(value, resolve_tz("America/Chicago")) == datetime(2026, 3, 3, 23, 4, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, "", "   ", "Tuesday sometime", "2026-13-45 25:61:00", True, [], 10**20])
def test_parse_time_unreadable_is_none(value: object) -> None:
    assert parse_time(value, UTC) is None


@pytest.mark.parametrize(("value", "zone"), [
    ("0001-01-01 00:00:00", "Asia/Shanghai"),  # a "no date" placeholder (.NET/Go minimum) in a +08:00 source
    ("0001-01-01T00:00:00+08:00", "UTC"),
    ("9999-12-31 23:59:59", "-05:00"),
    ("Fri, 31 Dec 9999 23:59:59 -0500", "UTC"),
])
def test_parse_time_out_of_range_in_utc_is_none(value: str, zone: str) -> None:
    # Readable, but before 0001-01-01 or after 9999-12-31 once converted to UTC: unreadable, not a crash.
    assert parse_time(value, resolve_tz(zone)) is None


def test_parse_time_number_too_large_for_a_float_is_none() -> None:
    # A JSON number hundreds of digits long: float() raises OverflowError; it is an unreadable date.
    assert parse_time(int("9" * 400), UTC) is None and parse_time(-int("9" * 400), UTC) is None


def test_resolve_tz_names_and_offsets() -> None:
    when = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert resolve_tz("UTC") is UTC
    assert resolve_tz("+08:00").utcoffset(when) == timedelta(hours=8)
    assert resolve_tz("UTC+8").utcoffset(when) == timedelta(hours=8)
    assert resolve_tz("-0530").utcoffset(when) == -timedelta(hours=5, minutes=30)
    assert resolve_tz("America/New_York").utcoffset(when) == -timedelta(hours=5)
    assert resolve_tz("+08:00") == timezone(timedelta(hours=8))
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        resolve_tz("Mars/Olympus")


def test_entity_hints_cashtags_and_exchange_tickers() -> None:
    text = ("$aurm and $KSTL rally; 金海证券(600998.sh) 子午食品(002988.SZ) 极光汽车(09981.HK) "
            "北风银行(NWBK.US) Pacific Grid (NYSE: PGEX); U.S. stocks; costs $5 more; $AURM again")
    assert entity_hints(text) == ("$AURM", "$KSTL", "600998.SH", "002988.SZ", "09981.HK", "NWBK", "PGEX")
    assert entity_hints("no tickers here, just $5 and 100 shares") == ()


def test_cap_body_marks_truncation() -> None:
    body, cut = cap_body("x" * 500, 100)
    assert cut and len(body) == 100 and body.endswith(TRUNCATION_MARK) and is_truncated(body, 100)
    body, cut = cap_body("short", 100)
    assert (body, cut) == ("short", False) and not is_truncated(body, 100)
    assert not is_truncated("a normal excerpt" + TRUNCATION_MARK, 100)


def test_clean_text_drops_ascii_controls_on_the_fast_path() -> None:
    assert clean_text("a\x00b\tc\r\nd  \x7f", keep_lines=True) == "ab c\nd"
    assert clean_text("plain  ascii\ntext") == "plain ascii text"
