"""Vocabulary extension: Chinese characters stop being [UNK], embeddings grow, new rows are sensible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast

from finsentinel.errors import ModelError
from nlp.vocab import extend_vocab, unknown_characters
from tests.tiny_model import make_tiny_base_dir
from training.encoder import resolve_base_model
from training.seed_data import read_jsonl, seed_files

HEADLINE = "极光汽车遭证监会立案调查，股价暴跌"


def load(path: Path) -> tuple[Any, Any]:
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)


def test_unknown_chinese_characters_are_added(tmp_path: Path) -> None:
    tokenizer, model = load(make_tiny_base_dir(tmp_path / "base"))
    before = len(tokenizer)
    assert tokenizer.unk_token in tokenizer.tokenize(HEADLINE)
    unknown = unknown_characters(tokenizer, [HEADLINE])
    assert "极" in unknown and "股" not in unknown  # 股 is in the tiny vocab already
    old_rows = model.get_input_embeddings().weight.detach().clone()

    added = extend_vocab(tokenizer, model, [HEADLINE, "shares plunge"])

    assert added == len(unknown) and len(tokenizer) == before + added
    assert tokenizer.unk_token not in tokenizer.tokenize(HEADLINE)
    assert tokenizer.tokenize(HEADLINE)[:2] == ["极", "光"]
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == before + added == model.config.vocab_size
    assert torch.equal(weight[:before], old_rows)  # existing rows untouched
    new = weight[before:].detach()
    assert (new - old_rows.mean(0)).abs().mean() < old_rows.std(0).mean()  # near the mean ...
    assert torch.cdist(new, new).fill_diagonal_(1.0).min() > 0  # ... but distinguishable
    assert extend_vocab(tokenizer, model, [HEADLINE]) == 0  # idempotent


def test_extension_is_seeded_and_survives_save(tmp_path: Path) -> None:
    base = make_tiny_base_dir(tmp_path / "base")
    results = []
    for _ in range(2):
        tokenizer, model = load(base)
        extend_vocab(tokenizer, model, [HEADLINE], seed=7)
        results.append(model.get_input_embeddings().weight.detach().clone())
    assert torch.equal(results[0], results[1])
    tokenizer.save_pretrained(tmp_path / "saved")
    assert AutoTokenizer.from_pretrained(tmp_path / "saved").tokenize(HEADLINE) == tokenizer.tokenize(
        HEADLINE
    )


def test_bundled_minilm_covers_every_seed_headline_after_extension() -> None:
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("bundled-minilm"))
    texts = [r["text"] for r in read_jsonl(seed_files()[0]) if r["lang"] == "zh"]
    assert sum(tokenizer.unk_token in tokenizer.tokenize(t) for t in texts) > len(texts) * 0.9
    small = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=1,
            intermediate_size=8,
        )
    )
    added = extend_vocab(tokenizer, small, texts)
    assert added > 300
    assert [t for t in texts if tokenizer.unk_token in tokenizer.tokenize(t)] == []


def test_non_wordpiece_tokenizer_is_refused() -> None:
    unk = "[UNK]"
    backend = Tokenizer(models.BPE(vocab={"a": 0, unk: 1}, merges=[], unk_token=unk))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=unk)
    model = BertModel(
        BertConfig(
            vocab_size=2, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8
        )
    )
    with pytest.raises(ModelError, match="WordPiece"):
        extend_vocab(tokenizer, model, ["极"])
