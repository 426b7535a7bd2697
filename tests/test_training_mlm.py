"""Continued MLM pre-training: packing of short texts and the masked-positions-only loss."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertForMaskedLM, DataCollatorForLanguageModeling

from tests.tiny_model import make_tiny_base_dir
from training.encoder import load_base
from training.mlm import chunk_texts, masked_lm_loss


def test_short_texts_are_packed_and_long_ones_cut(tmp_path: Path) -> None:
    tokenizer, _ = load_base(make_tiny_base_dir(tmp_path / "base"))
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    short = ["profit", "stock fall", "profit"]
    pieces = chunk_texts(short, tokenizer, max_length=16)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in short]
    assert pieces == [[cls, *ids[0], sep, *ids[1], sep, *ids[2], sep]]  # one piece, texts split by [SEP]
    cut = chunk_texts([" ".join(["profit"] * 30), "loss"], tokenizer, max_length=16)
    assert [len(p) for p in cut] == [16, 16, 6]  # 14 + 14 + 2 of the long text, then [SEP] loss
    assert all(p[0] == cls and p[-1] == sep for p in cut) and cut[2][1:-1] == [ids[0][0]] * 2 + [sep, *tokenizer(
        "loss", add_special_tokens=False)["input_ids"]]


def test_the_loss_over_masked_positions_is_the_masked_lm_loss(tmp_path: Path) -> None:
    base = make_tiny_base_dir(tmp_path / "base")
    tokenizer, _ = load_base(base)
    model = BertForMaskedLM.from_pretrained(base, use_safetensors=True).eval()
    torch.manual_seed(0)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.5)
    batch = collator([{"input_ids": p} for p in chunk_texts(["aurora motors shares plunge after fraud probe", "profit beats estimates"] * 4, tokenizer, 12)])
    with torch.no_grad():
        assert torch.allclose(masked_lm_loss(model, batch), model(**batch).loss, atol=1e-5)
        batch["labels"][:] = -100  # nothing masked: zero loss, not NaN
        assert float(masked_lm_loss(model, batch)) == 0.0
