"""Continued MLM pre-training: packing of short texts and the masked-positions-only loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import BertForMaskedLM, BertModel, DataCollatorForLanguageModeling

from finsentinel.errors import ConfigError, ModelError
from tests.tiny_model import make_tiny_base_dir
from training.encoder import load_base
from training.mlm import (
    MLM_HEAD,
    PRETRAIN_CARD,
    MlmArgs,
    chunk_texts,
    load_mlm_head,
    masked_lm_loss,
    pretrain_mlm,
    save_mlm_head,
)


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


def test_frozen_embeddings_stay_put_while_the_encoder_learns_under_bf16(tmp_path: Path) -> None:
    base = make_tiny_base_dir(tmp_path / "base")
    texts = ["aurora motors shares plunge after fraud probe", "profit beats estimates", "央行宣布降准"] * 6
    args = MlmArgs(batch_size=4, max_length=16, extend_vocab=False, train_embeddings=False, bf16=True)
    summary = pretrain_mlm(base, texts, args, tmp_path / "out", sources=["corpus.jsonl"])
    assert summary["steps"] >= 2 and summary["added_tokens"] == 0 and summary["last_loss"] > 0
    card = json.loads((tmp_path / "out" / PRETRAIN_CARD).read_text(encoding="utf-8"))
    assert card["sources"] == ["corpus.jsonl"] and card["texts"] == 18 and card["result"] == summary
    assert card["arguments"]["train_embeddings"] is False and "git_commit" in card["code_version"]
    before, after = (BertModel.from_pretrained(d, use_safetensors=True) for d in (base, tmp_path / "out"))
    assert torch.equal(before.embeddings.word_embeddings.weight, after.embeddings.word_embeddings.weight)
    moved = [name for name, p in after.named_parameters()
             if not torch.equal(p, before.get_parameter(name))]
    assert any(name.startswith("encoder.layer.") for name in moved)
    assert "pooler.dense.weight" not in moved  # the base's pooler is kept, not left out (and re-initialised)


def test_a_second_pass_continues_the_mlm_head_of_the_first(tmp_path: Path) -> None:
    base = make_tiny_base_dir(tmp_path / "base")
    texts = ["aurora motors shares plunge after fraud probe", "profit beats estimates"] * 6
    args = MlmArgs(batch_size=4, max_length=16, extend_vocab=False)
    assert pretrain_mlm(base, texts, args, tmp_path / "one")["continued_head"] is False
    first = BertForMaskedLM.from_pretrained(tmp_path / "one", use_safetensors=True)
    fresh = {k: v.clone() for k, v in first.cls.state_dict().items()}  # what loading alone gives: a new head
    assert load_mlm_head(first, tmp_path / "one")
    learned = first.cls.state_dict()
    assert not torch.equal(learned["predictions.transform.dense.weight"], fresh["predictions.transform.dense.weight"])
    assert torch.equal(learned["predictions.decoder.bias"], learned["predictions.bias"])  # the tie holds
    assert pretrain_mlm(tmp_path / "one", texts, args, tmp_path / "two")["continued_head"] is True

    save_mlm_head(first, tmp_path / "one")
    again = BertForMaskedLM.from_pretrained(tmp_path / "one", use_safetensors=True)
    assert load_mlm_head(again, tmp_path / "one")
    assert all(torch.equal(v, again.cls.state_dict()[k]) for k, v in learned.items())


def test_a_foreign_mlm_head_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    base = make_tiny_base_dir(tmp_path / "base")
    save_file({"dense.weight": torch.zeros(2, 2)}, str(base / MLM_HEAD))
    model = BertForMaskedLM.from_pretrained(base, use_safetensors=True)
    with pytest.raises(ModelError, match="delete the file"):
        load_mlm_head(model, base)


class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_at", [7, 9])  # 6 steps an epoch: at the boundary, mid-epoch 2
def test_a_crashed_pre_training_resumes_to_the_same_weights(tmp_path: Path, crash_at: int) -> None:
    base = make_tiny_base_dir(tmp_path / "base")
    texts = [f"{w} shares plunge after fraud probe {i}" for i, w in enumerate(["aurora", "profit", "央行"] * 4)]
    args = MlmArgs(epochs=2, batch_size=2, max_length=16, extend_vocab=False, seed=3)
    straight = pretrain_mlm(base, texts, args, tmp_path / "straight")

    def crash(message: str) -> None:
        if f" step {crash_at}/" in message:
            raise Crash

    ckpt = tmp_path / "ckpt"
    with pytest.raises(Crash):
        pretrain_mlm(base, texts, args, tmp_path / "out", crash, checkpoint_dir=ckpt)
    assert (ckpt / "checkpoint.json").is_file() and not (tmp_path / "out").exists()
    messages: list[str] = []
    resumed = pretrain_mlm(base, texts, args, tmp_path / "out", messages.append, checkpoint_dir=ckpt)
    assert any(m.startswith(f"resumed from {ckpt}") for m in messages) and not ckpt.exists()
    assert resumed["steps"] == straight["steps"] and resumed["last_loss"] == straight["last_loss"]
    one, two = (BertForMaskedLM.from_pretrained(d, use_safetensors=True) for d in (tmp_path / "straight", tmp_path / "out"))
    assert load_mlm_head(one, tmp_path / "straight") and load_mlm_head(two, tmp_path / "out")
    assert all(torch.equal(p, two.get_parameter(name)) for name, p in one.named_parameters())

    other = MlmArgs(epochs=2, batch_size=2, max_length=16, extend_vocab=False, seed=4)
    with pytest.raises(Crash):
        pretrain_mlm(base, texts, args, tmp_path / "again", crash, checkpoint_dir=ckpt)
    messages.clear()
    pretrain_mlm(base, texts, other, tmp_path / "again", messages.append, checkpoint_dir=ckpt)
    assert not any(m.startswith("resumed") for m in messages)  # other arguments: started afresh


def test_a_checkpoint_directory_that_holds_something_else_is_refused(tmp_path: Path) -> None:
    base = make_tiny_base_dir(tmp_path / "base")
    args = MlmArgs(epochs=1, batch_size=2, max_length=16, extend_vocab=False, seed=3)
    texts = ["aurora shares plunge after fraud probe"] * 4
    with pytest.raises(ConfigError, match="not a checkpoint directory"):
        pretrain_mlm(base, texts, args, tmp_path / "out", checkpoint_dir=base)  # the base model itself
    assert (base / "config.json").is_file() and not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="the same directory as the model"):
        pretrain_mlm(base, texts, args, tmp_path / "out", checkpoint_dir=tmp_path / "out")
