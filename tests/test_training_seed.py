"""ensure_seed_model: trains once, reuses a matching cached model, retrains on any mismatch or damage."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from finsentinel.errors import ModelError
from nlp.model import CARD_JSON, HEADS_FILE, load_model
from nlp.torch_backend import TorchClassifier
from tests.tiny_model import make_tiny_base_dir
from training import seed as seed_module
from training.args import TrainingArgs
from training.seed import DEFAULT_SEED_ARGS, SEED_MODEL_NAME, cache_key, ensure_seed_model
from training.seed_data import read_jsonl, seed_files

QUICK = TrainingArgs(epochs=1, batch_size=128, lr=1e-3, max_length=32)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base_dir(tmp_path_factory.mktemp("base") / "bert")


def forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("should have used the cached model")

    monkeypatch.setattr(seed_module, "train_multitask", fail)


def test_trains_once_then_reuses(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "seed"
    messages: list[str] = []
    assert ensure_seed_model(out, str(base), messages.append, args=QUICK) == out
    assert "does not exist" in messages[0] and any(m.startswith("epoch 1/1") for m in messages)
    card = json.loads((out / CARD_JSON).read_text(encoding="utf-8"))
    assert card["name"] == SEED_MODEL_NAME and card["cache_key"] == cache_key(str(base), QUICK)
    assert [f["path"] for f in card["data"]["files"]] == [
        "training/seed/seed_labels.jsonl",
        "training/seed/seed_labels_heldout.jsonl",
        "training/seed/probe_headlines.jsonl",
    ]
    assert card["data"]["train"]["rows"] == len(read_jsonl(seed_files()[0]))
    assert set(card["extra_evaluations"]) == {"probe"}
    version = load_model(out).version

    forbid_training(monkeypatch)
    messages.clear()
    assert ensure_seed_model(out, str(base), messages.append, args=replace(QUICK, threads=1)) == out
    assert messages == [f"seed model: using the cached model in {out}"]
    assert load_model(out).version == version


def test_other_arguments_or_damage_retrain(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "seed"
    ensure_seed_model(out, str(base), args=QUICK)
    first = load_model(out).version
    messages: list[str] = []
    ensure_seed_model(out, str(base), messages.append, args=replace(QUICK, seed=99))
    assert "other seed data, base model or training arguments" in messages[0]
    assert load_model(out).version != first

    data = bytearray((out / HEADS_FILE).read_bytes())
    data[-1] ^= 0xFF
    (out / HEADS_FILE).write_bytes(bytes(data))
    messages.clear()
    ensure_seed_model(out, str(base), messages.append, args=replace(QUICK, seed=99))
    assert "do not match their recorded hash" in messages[0]
    load_model(out)

    (out / CARD_JSON).write_text("{", encoding="utf-8")
    messages.clear()
    ensure_seed_model(out, str(base), messages.append, args=replace(QUICK, seed=99))
    assert "model card cannot be read" in messages[0]


def test_unusable_base_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="expected a Hugging Face checkpoint directory"):
        ensure_seed_model(tmp_path / "seed", str(tmp_path / "no-such-base"))


def test_main_reports_errors_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert seed_module.main(["--model-dir", str(tmp_path / "m"), "--base-model", str(tmp_path / "x")]) == 2
    assert "error: base model" in capsys.readouterr().err


def test_default_arguments_are_the_documented_ones() -> None:
    assert DEFAULT_SEED_ARGS.epochs == 4 and DEFAULT_SEED_ARGS.threads == 0


@pytest.mark.slow
def test_a_chinese_vocab_base_given_by_path_works_unchanged(tmp_path: Path) -> None:
    """Any BERT-family checkpoint directory is a base by configuration alone, here a Chinese-vocab one."""
    texts = [r["text"] for r in read_jsonl(seed_files()[0])]
    base = make_tiny_base_dir(tmp_path / "zh-bert", chinese_vocab=True, texts=texts)
    out = ensure_seed_model(tmp_path / "seed", str(base))
    card = json.loads((out / CARD_JSON).read_text(encoding="utf-8"))
    assert card["training"]["added_tokens"] < 5  # the vocabulary already has the Chinese characters
    assert card["base_model"]["path"] == str(base)
    assert card["validation_metrics"]["sentiment"]["accuracy"] > 0.5  # chance is 1/3, from random weights
    classifier = TorchClassifier(out)
    assert (
        len(classifier.classify(["极光汽车遭证监会立案调查，股价暴跌", "Aurora Motors shares plunge"])) == 2
    )
