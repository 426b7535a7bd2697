"""The seed data: reproducible byte for byte, balanced, honest about its splits, no demo companies."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from nlp.linking import EntityLinker, Watchlist
from training import seed_data
from training.seed_data import (
    LANGS,
    PROBE_FILE,
    SEED_DIR,
    SENTIMENT_LABELS,
    TOPICS,
    generate_splits,
    read_jsonl,
    seed_files,
    to_jsonl,
)
from training.seed_fillers import HELDOUT_COMPANIES, TRAIN_COMPANIES


@pytest.fixture(scope="module")
def splits() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    return generate_splits()


def test_regeneration_reproduces_the_committed_files(splits: tuple[list[dict[str, str]], ...]) -> None:
    train_path, heldout_path = seed_files()
    assert train_path.read_bytes() == to_jsonl(splits[0]), "run: python -m training.seed_data"
    assert heldout_path.read_bytes() == to_jsonl(splits[1]), "run: python -m training.seed_data"


def test_main_writes_and_checks(tmp_path: Path) -> None:
    assert seed_data.main(["--check"]) == 0
    assert seed_data.main(["--check", "--out", str(tmp_path)]) == 1
    assert seed_data.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "seed_labels.jsonl").read_bytes() == seed_files()[0].read_bytes()
    assert seed_data.main(["--check", "--out", str(tmp_path)]) == 0


def test_rows_have_the_four_fields_and_known_labels(splits: tuple[list[dict[str, str]], ...]) -> None:
    for rows in splits:
        for row in rows:
            assert list(row) == ["text", "label", "topic", "lang"]
            assert row["label"] in SENTIMENT_LABELS and row["topic"] in TOPICS and row["lang"] in LANGS
            assert "{" not in row["text"] and row["text"].strip() == row["text"]


def test_size_and_balance(splits: tuple[list[dict[str, str]], ...]) -> None:
    train, heldout = splits
    assert 1200 <= len(train) + len(heldout) <= 2000
    cells = Counter((r["topic"], r["label"], r["lang"]) for r in train)
    assert len(cells) == len(TOPICS) * 3 * 2 and len(set(cells.values())) == 1
    assert len({r["text"] for r in train}) == len(train)


def test_heldout_split_shares_no_text_or_company_with_training(
    splits: tuple[list[dict[str, str]], ...],
) -> None:
    train, heldout = splits
    assert not {r["text"] for r in train} & {r["text"] for r in heldout}
    train_text = "\n".join(r["text"] for r in train)
    heldout_text = "\n".join(r["text"] for r in heldout)
    for en, zh, _, _ in HELDOUT_COMPANIES:
        assert en not in train_text and zh not in train_text
    for en, zh, _, _ in TRAIN_COMPANIES:
        assert en not in heldout_text and zh not in heldout_text


def test_no_demo_watchlist_company_appears_anywhere(splits: tuple[list[dict[str, str]], ...]) -> None:
    linker = EntityLinker(Watchlist.load())
    mentioned = {r["text"]: linker.link(r["text"]) for rows in splits for r in rows}
    assert {t: ids for t, ids in mentioned.items() if ids} == {}


def test_many_templates_and_fictional_companies() -> None:
    from training.seed_templates_en import EN
    from training.seed_templates_zh import ZH

    assert len(TRAIN_COMPANIES) >= 20
    for templates in (EN, ZH):
        assert set(templates) == {(t, s) for t in TOPICS for s in SENTIMENT_LABELS}
        assert min(len(v) for v in templates.values()) >= 5


def test_seed_words_carry_the_sentiment(splits: tuple[list[dict[str, str]], ...]) -> None:
    train = splits[0]
    for word, label in [
        ("plunge", "negative"),
        ("fraud", "negative"),
        ("recall", "negative"),
        ("暴跌", "negative"),
        ("违规", "negative"),
        ("立案调查", "negative"),
        ("召回", "negative"),
        ("增长", "positive"),
        ("回购", "positive"),
    ]:
        labels = Counter(r["label"] for r in train if re.search(word, r["text"]))
        assert labels and labels.most_common(1)[0][0] == label, (word, labels)


def test_probe_set_is_valid_and_unseen() -> None:
    probe = read_jsonl(SEED_DIR / PROBE_FILE)
    train_texts = {r["text"] for r in read_jsonl(seed_files()[0])}
    assert len(probe) == 48 and not {r["text"] for r in probe} & train_texts
    assert {r["lang"] for r in probe} == set(LANGS) and {r["topic"] for r in probe} == set(TOPICS)
    assert {r["label"] for r in probe} == set(SENTIMENT_LABELS)
