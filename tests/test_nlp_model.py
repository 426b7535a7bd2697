"""The model directory format: save/load round trip and every way a directory can be unusable."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from finsentinel.errors import ModelError
from finsentinel.schema import SENTIMENTS
from nlp.model import (
    CARD_JSON,
    CARD_MD,
    ENCODER_FILE,
    FORMAT_VERSION,
    HEADS_FILE,
    SPEC_FILE,
    ModelSpec,
    load_model,
    weights_sha256,
)
from nlp.torch_backend import TorchClassifier
from tests.tiny_model import TINY_TOPICS, make_tiny_base_dir, make_tiny_model_dir


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def model_copy(tiny_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_dir, tmp_path / "copy"))


def test_round_trip_restores_identical_weights_and_spec(tiny_dir: Path, tmp_path: Path) -> None:
    loaded = load_model(tiny_dir)
    assert loaded.spec.topics == TINY_TOPICS and loaded.spec.sentiments == SENTIMENTS
    assert loaded.spec.format_version == FORMAT_VERSION and loaded.spec.pooling == "mean"
    assert loaded.version == f"tiny-test@{weights_sha256(tiny_dir)[:12]}"
    from nlp.model import save_model

    again = save_model(loaded.model, loaded.tokenizer, loaded.spec, tmp_path / "again")
    assert again.weights_sha256 == loaded.spec.weights_sha256  # byte-identical weights
    reloaded = load_model(tmp_path / "again")
    batch = loaded.tokenizer(["shares plunge 股价跌"], return_tensors="pt")
    with torch.inference_mode():
        for a, b in zip(loaded.model(batch), reloaded.model(batch), strict=True):
            assert torch.equal(a, b)


def test_directory_is_self_describing(tiny_dir: Path) -> None:
    spec = json.loads((tiny_dir / SPEC_FILE).read_text(encoding="utf-8"))
    assert spec["format"] == "finsentinel-multitask-classifier" and spec["topics"] == list(TINY_TOPICS)
    assert spec["max_length"] == 32 and spec["base_model"]
    config = json.loads((tiny_dir / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "bert" and config["vocab_size"] > 60  # grown by the Chinese characters
    card = json.loads((tiny_dir / CARD_JSON).read_text(encoding="utf-8"))
    assert card["data"]["train"]["rows"] == 12 and len(card["data"]["train"]["sha256"]) == 64
    assert card["training_args"]["epochs"] == 1 and card["code_version"]["torch"]
    assert set(card["validation_metrics"]) == {"sentiment", "topic"}
    assert "## Validation" in (tiny_dir / CARD_MD).read_text(encoding="utf-8")
    assert not list(tiny_dir.glob("*.bin")) and not list(tiny_dir.glob("*.pt"))


def test_missing_directory_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist.*finsentinel seed-model"):
        load_model(tmp_path / "nope")


@pytest.mark.parametrize("name", [ENCODER_FILE, HEADS_FILE, "config.json"])
def test_missing_file_is_named(model_copy: Path, name: str) -> None:
    (model_copy / name).unlink()
    with pytest.raises(ModelError, match=f"incomplete, missing {name}"):
        load_model(model_copy)


def test_missing_tokenizer_is_named(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match="missing tokenizer.json or vocab.txt"):
        load_model(model_copy)


@pytest.mark.parametrize("name", [ENCODER_FILE, HEADS_FILE])
def test_truncated_safetensors_is_corrupt(model_copy: Path, name: str) -> None:
    data = (model_copy / name).read_bytes()
    (model_copy / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        load_model(model_copy)


def test_flipped_weight_bytes_fail_the_hash(model_copy: Path) -> None:
    data = bytearray((model_copy / HEADS_FILE).read_bytes())
    data[-1] ^= 0xFF
    (model_copy / HEADS_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="do not match the hash"):
        load_model(model_copy)


def test_plain_hf_checkpoint_is_the_wrong_kind(tmp_path: Path) -> None:
    base = make_tiny_base_dir(tmp_path / "base")
    with pytest.raises(ModelError, match="plain Hugging Face checkpoint.*nlp.base_model"):
        load_model(base)


def test_a_folder_that_is_no_model_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a model directory.*check the path") as caught:
        load_model(tmp_path)
    assert "nlp.base_model" not in str(caught.value)


def test_other_format_version_is_from_another_release(model_copy: Path) -> None:
    spec = json.loads((model_copy / SPEC_FILE).read_text(encoding="utf-8"))
    spec["format_version"] = FORMAT_VERSION + 1
    (model_copy / SPEC_FILE).write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ModelError, match="another release"):
        load_model(model_copy)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"format": "something-else"}),
        json.dumps({"format": "finsentinel-multitask-classifier", "format_version": FORMAT_VERSION}),
    ],
)
def test_bad_spec_file(model_copy: Path, content: str) -> None:
    (model_copy / SPEC_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(ModelError, match=SPEC_FILE):
        load_model(model_copy)


def test_weights_that_do_not_fit_the_spec(model_copy: Path) -> None:
    spec = ModelSpec.from_file(model_copy / SPEC_FILE)
    bigger = replace(spec, topics=(*spec.topics, "Macro"))
    (model_copy / SPEC_FILE).write_text(bigger.to_json(), encoding="utf-8")
    with pytest.raises(ModelError, match="do not fit"):
        load_model(model_copy)


def test_classifier_constructor_does_no_io_and_fails_on_first_use(tmp_path: Path) -> None:
    classifier = TorchClassifier(tmp_path / "absent")
    with pytest.raises(ModelError, match="does not exist"):
        classifier.classify(["anything"])
    assert classifier.classify([]) == []


def test_classifier_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="batch_size"):
        TorchClassifier(tmp_path, batch_size=0)
