"""Privacy masking: each kind of personal data is masked, look-alike numbers survive."""

from __future__ import annotations

import pytest

from nlp.privacy import is_cn_id, luhn_ok, mask_pii, mask_pii_counts

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def cn_id(first17: str) -> str:
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


VALID_ID = cn_id("11010519491231002")  # the GB 11643 standard's example: 11010519491231002X


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("联系邮箱zhang.san@example.com.cn，谢谢", "联系邮箱[EMAIL]，谢谢"),
        ("mail ir@aurora-motors.com.", "mail [EMAIL]."),
        (f"身份证号{VALID_ID}。", "身份证号[ID]。"),
        (f"ID {VALID_ID.lower()} end", "ID [ID] end"),
        ("旧身份证110105491231002", "旧身份证[ID]"),
        ("卡号 4111 1111 1111 1111 已冻结", "卡号 [CARD] 已冻结"),
        ("card 5500-0000-0000-0004", "card [CARD]"),
        ("电话13812345678", "电话[PHONE]"),
        ("手机 +86 138-1234-5678", "手机 [PHONE]"),
        ("tel 138 1234 5678.", "tel [PHONE]."),
        ("热线(0755) 8888 6666或010-12345678", "热线[PHONE]或[PHONE]"),
        ("call +1 415-555-0132 now", "call [PHONE] now"),
    ],
)
def test_personal_data_is_masked(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "贵州茅台(600519)股价1850.5元，2024年3月12日",
        "$AAPL up 3.5% to 189.30 on 2024-03-12, volume 12345678",
        "4111111111111112 fails the Luhn check",
        f"{VALID_ID[:-1]}{'0' if VALID_ID[-1] != '0' else '1'} has a wrong check digit",
        "11010519491331002X has no 31st day of the 13th month",
        "revenue of 1,234,567,890 yuan; order 2024031200",
        "",
    ],
)
def test_look_alike_numbers_survive(text: str) -> None:
    assert mask_pii(text) == text


def test_counts_report_what_was_masked() -> None:
    masked = mask_pii_counts(f"a@b.cn {VALID_ID} 13812345678 13912345678")
    assert masked.counts == {"EMAIL": 1, "ID": 1, "PHONE": 2} and masked.changed
    assert not mask_pii_counts("nothing here").changed


def test_checksums() -> None:
    assert is_cn_id(VALID_ID) and VALID_ID == "11010519491231002X"
    assert not is_cn_id("123") and not is_cn_id("1101051949123100AX")
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("电话１３８１２３４５６７８", "电话[PHONE]"),  # full-width digits, as typed with a Chinese IME
        ("手机：１３８－１２３４－５６７８。", "手机：[PHONE]。"),
        ("热线（０７５５）８８８８ ６６６６", "热线[PHONE]"),
        ("邮箱ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ，谢谢", "邮箱[EMAIL]，谢谢"),
        (f"身份证{VALID_ID.translate({ord(c): ord(c) + 0xFEE0 for c in '0123456789X'})}号", "身份证[ID]号"),
        ("电话：138　1234　5678", "电话：[PHONE]"),  # ideographic spaces between the groups
    ],
)
def test_full_width_personal_data_is_masked(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


def test_full_width_look_alikes_survive_and_the_rest_is_kept() -> None:
    text = "贵州茅台（６００５１９）收于１８５０．５元，２０２４年３月１２日"
    assert mask_pii(text) == text
    assert mask_pii("ＡＢＣ电话１３８１２３４５６７８ＸＹＺ") == "ＡＢＣ电话[PHONE]ＸＹＺ"
