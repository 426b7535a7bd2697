"""Reading labelled files: formats, label maps, language guessing, event files, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finsentinel.errors import ConfigError
from training.data import (
    guess_lang,
    is_partial,
    parse_label_map,
    read_event_rows,
    read_rows,
    sentiment_choices,
    texts_of,
)

ROWS = [
    {"text": "$ALLY pulls outlook", "label": "Bearish", "lang": "en"},
    {"text": "公司利润增长", "label": "Bullish"},
    {"text": "Fed holds rates", "topic": "Macro"},
    {"text": "no label at all"},
]
MAP = {"Bearish": "negative", "Bullish": "positive", "Neutral": "neutral"}


def test_label_map_parsing() -> None:
    assert parse_label_map("Bearish=negative, Bullish=positive,0=neutral") == {
        "Bearish": "negative", "Bullish": "positive", "0": "neutral"}
    assert parse_label_map(None) == {} and parse_label_map("") == {}
    with pytest.raises(ConfigError, match="expected FROM=TO"):
        parse_label_map("Bearish")
    with pytest.raises(ConfigError, match="targets must be one of"):
        parse_label_map("Bearish=bad")


def test_partial_labels_map_and_read(tmp_path: Path) -> None:
    assert parse_label_map("not_negative=neutral|positive") == {"not_negative": "neutral|positive"}
    assert sentiment_choices("neutral|positive") == ("neutral", "positive") and sentiment_choices("negative") == (
        "negative",)
    for bad in ("neutral|bogus", "neutral|neutral", "negative|neutral|positive", "neutral|"):
        assert sentiment_choices(bad) is None
        with pytest.raises(ConfigError, match="partial label of two of them"):
            parse_label_map(f"x={bad}")
    path = tmp_path / "nsp.jsonl"
    path.write_text('{"text": "公司涉嫌诈骗", "label": "negative"}\n{"text": "公司发布年报", "label": "not_negative"}\n',
                    encoding="utf-8")
    rows = read_rows(path, parse_label_map("not_negative=neutral|positive"))
    assert [r["label"] for r in rows] == ["negative", "neutral|positive"]
    assert [is_partial(r["label"]) for r in rows] == [False, True]
    with pytest.raises(ConfigError, match="'not_negative' is not one of"):
        read_rows(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_formats_read_the_same_rows(tmp_path: Path, suffix: str) -> None:
    import pandas as pd

    path = tmp_path / f"data{suffix}"
    frame = pd.DataFrame(ROWS)
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    rows = read_rows(path, MAP)
    assert rows == [
        {"text": "$ALLY pulls outlook", "lang": "en", "label": "negative"},
        {"text": "公司利润增长", "lang": "zh", "label": "positive"},
        {"text": "Fed holds rates", "lang": "en", "topic": "Macro"},
    ]
    assert texts_of(path, limit=2) == ["$ALLY pulls outlook", "公司利润增长"]


def test_unmapped_labels_and_bad_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "x", "label": "Bearish"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'Bearish' is not one of.*--label-map"):
        read_rows(path)
    (tmp_path / "d.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected one of"):
        read_rows(tmp_path / "d.txt")
    with pytest.raises(ConfigError, match="cannot read labelled data"):
        read_rows(tmp_path / "missing-dataset-id")
    (tmp_path / "quote.csv").write_text('text,label\nhello,positive\n"unclosed,negative\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="quote.csv' .ParserError: .*EOF inside string"):  # the parser's words
        read_rows(tmp_path / "quote.csv")
    (tmp_path / "zero.csv").write_bytes(b"")
    with pytest.raises(ConfigError, match="zero.csv is empty: expected rows with a .text. field"):
        read_rows(tmp_path / "zero.csv")
    (tmp_path / "blank.jsonl").write_text("\n \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="blank.jsonl is empty: expected rows with a .text. field"):
        read_rows(tmp_path / "blank.jsonl")
    empty = tmp_path / "e.jsonl"
    empty.write_text(json.dumps({"text": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no rows with a 'label' or 'topic'"):
        read_rows(empty)
    blank = tmp_path / "b.jsonl"
    blank.write_text(json.dumps({"text": " ", "label": "negative"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="non-empty 'text'"):
        read_rows(blank)


def test_event_rows_from_lists_or_joined_topics(tmp_path: Path) -> None:
    path = tmp_path / "ev.jsonl"
    rows = [{"text": "甲公司涉嫌违法", "topics": ["涉嫌违法", "涉嫌非法集资"], "topic": "涉嫌违法 涉嫌非法集资"},
            {"text": "乙公司公告", "topic": "其他"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert [r["events"] for r in read_event_rows(path)] == [["涉嫌违法", "涉嫌非法集资"], ["其他"]]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x", "label": "negative"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="event types in 'topics'"):
        read_event_rows(bad)


def test_language_guess() -> None:
    assert guess_lang("极光汽车股价暴跌") == "zh" and guess_lang("Aurora 股价 plunges hard today") == "en"
    assert guess_lang("") == "en"


def test_shared_data_reads_with_the_tfns_map(shared_data: Path) -> None:
    rows = read_rows(shared_data / "tfns_sentiment" / "valid.jsonl", MAP)
    assert len(rows) == 2388 and {r["label"] for r in rows} == {"negative", "neutral", "positive"}


def test_numeric_labels_of_a_csv_with_blank_cells_map_as_written(tmp_path: Path) -> None:
    """A blank cell makes pandas read a numeric column as floats (1 -> 1.0); the label map says 1."""
    path = tmp_path / "mixed.csv"
    path.write_text("text,label,topic\nstocks rise,1,\nstocks fall,0,\nrates held,,2\nrates cut,,3\n",
                    encoding="utf-8")
    rows = read_rows(path, parse_label_map("0=negative,1=positive"))
    assert [r.get("label") for r in rows] == ["positive", "negative", None, None]
    assert [r.get("topic") for r in rows] == [None, None, "2", "3"]
