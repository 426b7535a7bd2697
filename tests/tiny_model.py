"""A real, tiny FinSentinel model for tests: built in-process in about a second, no downloads.

``make_tiny_base_dir`` writes a randomly initialised 2-layer BERT checkpoint (hidden size 32)
with a small WordPiece vocabulary; ``make_tiny_model_dir`` fine-tunes it for one step on a dozen
rows through the real :func:`training.train.train_multitask` and saves it in the real format.
Its predictions are meaningless; its format, code paths and errors are the production ones.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizer
from transformers.utils import logging as hf_logging

from training.args import TrainingArgs
from training.train import train_multitask

TINY_TOPICS: tuple[str, ...] = ("Earnings", "Legal | Regulation", "Stock Movement")
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
WORDS = (
    "shares",
    "stock",
    "profit",
    "loss",
    "plunge",
    "surge",
    "fraud",
    "probe",
    "regulator",
    "opens",
    "after",
    "beats",
    "misses",
    "estimates",
    "flat",
    "court",
    "rules",
    "fined",
    "report",
    "results",
    "on",
    "in",
    "to",
    "the",
    "a",
    "of",
    "and",
    "aurora",
    "motors",
    "halcyon",
    "q3",
    "update",
    "number",
    "fall",
)
PIECES = ("##s", "##ed", "##ing", "##er")
PUNCT = tuple(".,:;!?%$()-'\"") + tuple("0123456789")
SOME_CJK = tuple("股价涨跌公司")
MORE_CJK = tuple("极光汽车遭证监会立案调查暴利润增长号告第下降违规召回")

ROWS_EN = (
    ("Aurora Motors shares plunge after regulator opens fraud probe", "negative", "Stock Movement"),
    ("Halcyon profit beats estimates in Q3", "positive", "Earnings"),
    ("Court rules on the fraud probe", "neutral", "Legal | Regulation"),
    ("Halcyon stock surges on results", "positive", "Stock Movement"),
    ("Aurora Motors misses estimates, loss widens", "negative", "Earnings"),
    ("Regulator fined Halcyon", "negative", "Legal | Regulation"),
    ("Aurora shares flat after the report", "neutral", "Stock Movement"),
    ("Halcyon to report Q3 results", "neutral", "Earnings"),
)
ROWS_ZH = (
    ("极光汽车遭证监会立案调查，股价暴跌", "negative", "Legal | Regulation"),
    ("公司利润增长，股价涨", "positive", "Earnings"),
    ("公司股价下跌", "negative", "Stock Movement"),
    ("极光汽车第3号公告", "neutral", "Earnings"),
)


def tiny_rows(topics: Sequence[str] = TINY_TOPICS, with_chinese: bool = True) -> list[dict[str, str]]:
    """A dozen labelled rows (eight English, four Chinese); topics are mapped onto ``topics`` in turn."""
    base = list(ROWS_EN) + (list(ROWS_ZH) if with_chinese else [])
    mapping = {t: topics[i % len(topics)] for i, t in enumerate(TINY_TOPICS)}
    rows = [
        {"text": text, "label": label, "topic": mapping[topic], "lang": "zh" if i >= len(ROWS_EN) else "en"}
        for i, (text, label, topic) in enumerate(base)
    ]
    for i, topic in enumerate(topics):  # every topic gets at least one row
        rows[i % len(rows)]["topic"] = topic
    return rows


def make_tiny_base_dir(
    path: Path, chinese_vocab: bool = False, seed: int = 0, texts: Sequence[str] = ()
) -> Path:
    """A randomly initialised tiny BERT checkpoint directory (config.json, model.safetensors, tokenizer).

    With ``chinese_vocab`` the vocabulary already holds every non-ASCII character of :data:`ROWS_ZH`
    and of ``texts`` (like a Chinese BERT), otherwise only a few Chinese characters (like an English one).
    """
    path.mkdir(parents=True, exist_ok=True)
    tokens = [*SPECIAL, *WORDS, *PIECES, *PUNCT, *SOME_CJK]
    if chinese_vocab:
        corpus = [text for text, _, _ in ROWS_ZH] + list(texts) + ["".join(MORE_CJK)]
        tokens += sorted({ch for text in corpus for ch in text if not ch.isascii() and not ch.isspace()})
    tokens = list(dict.fromkeys(tokens))
    (path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(tokens)})
    tokenizer.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(tokens),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    hf_logging.disable_progress_bar()
    BertModel(config).save_pretrained(path)
    return path


def make_tiny_model_dir(
    path: Path, topics: Sequence[str] = TINY_TOPICS, with_chinese: bool = True, seed: int = 1
) -> Path:
    """Train a tiny model for one step on :func:`tiny_rows` and save it at ``path`` in the real format."""
    rows = tiny_rows(topics, with_chinese)
    args = TrainingArgs(epochs=1, batch_size=len(rows), lr=1e-3, max_length=32, warmup_ratio=0.0, seed=seed)
    scratch = Path(tempfile.mkdtemp(prefix="tiny-base-"))
    try:
        base = make_tiny_base_dir(scratch / "base")
        train_multitask(base, rows, rows[:4], args, path, name="tiny-test")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path
