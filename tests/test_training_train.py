"""train_multitask on the tiny base: mixed-label rows, bad rows, progress, atomic writes, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finsentinel.errors import ConfigError, ModelError
from nlp.model import CARD_JSON, load_model
from nlp.torch_backend import TorchClassifier
from tests.tiny_model import make_tiny_base_dir, tiny_rows
from training import train as train_module
from training.args import TrainingArgs
from training.metrics import classification_metrics, head_metrics
from training.train import train_multitask

FAST = TrainingArgs(epochs=2, batch_size=4, lr=1e-3, max_length=24, warmup_ratio=0.25, seed=3)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base_dir(tmp_path_factory.mktemp("base") / "bert")


def test_rows_may_carry_one_or_both_labels(base: Path, tmp_path: Path) -> None:
    rows = tiny_rows()
    rows[0] = {"text": rows[0]["text"], "label": "negative"}  # sentiment only
    rows[1] = {"text": rows[1]["text"], "topic": "Earnings"}  # topic only
    messages: list[str] = []
    result = train_multitask(base, rows, rows[4:], FAST, tmp_path / "m", messages.append, name="mixed")
    assert result.steps == 2 * 3 and result.added_tokens > 0
    assert any(m.startswith("epoch 2/2 step 3/3 loss ") for m in messages)
    assert any(m.startswith("validation: sentiment accuracy") for m in messages)
    assert result.metrics["sentiment"]["n"] == 8 and result.metrics["topic"]["by_lang"]["zh"]["n"] == 4
    loaded = load_model(tmp_path / "m")
    assert loaded.version == result.version and loaded.spec.topics == (
        "Earnings",
        "Legal | Regulation",
        "Stock Movement",
    )
    prediction = TorchClassifier(tmp_path / "m").classify(["极光汽车遭证监会立案调查"])[0]
    assert prediction.topic in loaded.spec.topics


def test_training_is_deterministic(base: Path, tmp_path: Path) -> None:
    one = train_multitask(base, tiny_rows(), [], FAST, tmp_path / "a")
    two = train_multitask(base, tiny_rows(), [], FAST, tmp_path / "b")
    assert one.spec.weights_sha256 == two.spec.weights_sha256
    assert one.metrics == {}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"text": "x"}, "a 'label' and/or 'topic'"),
        ({"text": "x", "label": "bullish"}, "'bullish' is not one of"),
        ({"label": "negative", "topic": "Earnings"}, "expected 'text'"),
    ],
)
def test_bad_training_rows_are_named(base: Path, tmp_path: Path, row: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        train_multitask(base, [*tiny_rows(), row], [], FAST, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_validation_topic_unknown_to_training_fails_before_training(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid row 0: topic 'Macro'"):
        train_multitask(base, tiny_rows(), [{"text": "x", "topic": "Macro"}], FAST, tmp_path / "m")


def test_rows_without_both_tasks_are_refused(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both topic and sentiment"):
        train_multitask(base, [{"text": "x", "label": "neutral"}], [], FAST, tmp_path / "m")


def test_args_must_be_training_args(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected TrainingArgs"):
        train_multitask(base, tiny_rows(), [], {"epochs": 1}, tmp_path / "m")  # type: ignore[arg-type]


def test_bad_base_model_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="expected a Hugging Face checkpoint directory"):
        train_multitask(tmp_path / "nothing", tiny_rows(), [], FAST, tmp_path / "m")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "bin" / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelError, match="no \\*.safetensors"):
        train_multitask(tmp_path / "bin", tiny_rows(), [], FAST, tmp_path / "m")


def test_existing_model_is_replaced_atomically(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "model"
    first = train_multitask(base, tiny_rows(), [], FAST, out)
    second = train_multitask(base, tiny_rows(), [], TrainingArgs(epochs=1, batch_size=4, seed=5), out)
    assert load_model(out).spec.weights_sha256 == second.spec.weights_sha256 != first.spec.weights_sha256

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(train_module, "save_model", crash)
    with pytest.raises(OSError, match="disk full"):
        train_multitask(base, tiny_rows(), [], FAST, out)
    assert load_model(out).spec.weights_sha256 == second.spec.weights_sha256  # old model intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary leftovers


def test_refuses_to_overwrite_a_directory_that_is_not_a_model(base: Path, tmp_path: Path) -> None:
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ModelError, match="refusing to write a model over"):
        train_multitask(base, tiny_rows(), [], FAST, tmp_path / "precious")
    assert (tmp_path / "precious" / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_card_records_data_args_metrics_and_extra_evaluations(base: Path, tmp_path: Path) -> None:
    rows = tiny_rows()
    result = train_multitask(
        base,
        rows,
        rows[:6],
        FAST,
        tmp_path / "m",
        name="carded",
        data_sources={"files": [{"path": "x.jsonl", "rows": 12, "sha256": "ab"}]},
        extra_eval={"probe": rows[6:]},
        card_extra={"cache_key": {"k": 1}},
    )
    card = json.loads((tmp_path / "m" / CARD_JSON).read_text(encoding="utf-8"))
    assert card["name"] == "carded" and card["cache_key"] == {"k": 1}
    assert card["data"]["train"]["rows"] == 12 and card["data"]["valid"]["rows"] == 6
    assert card["data"]["eval:probe"]["rows"] == 6 and card["data"]["files"][0]["path"] == "x.jsonl"
    assert card["training_args"] == FAST.to_dict()
    assert card["validation_metrics"] == result.metrics
    assert card["extra_evaluations"]["probe"] == result.extra_metrics["probe"]
    assert card["base_model"]["architecture"] == "BertModel" and len(card["base_model"]["sha256"]) == 64
    assert card["training"]["added_tokens"] == result.added_tokens
    assert "finsentinel" in card["code_version"] and "git_commit" in card["code_version"]


def test_classification_metrics_match_hand_computed_values() -> None:
    m = classification_metrics(["a", "a", "b", "c"], ["a", "b", "b", "b"])
    assert m["accuracy"] == 0.5
    # F1: a = 2/3 (p=1, r=.5), b = 0.5 (p=1/3, r=1), c = 0
    assert m["f1"] == {"a": 0.6667, "b": 0.5, "c": 0.0} and m["macro_f1"] == round((2 / 3 + 0.5) / 3, 4)
    assert classification_metrics([], []) == {"n": 0}
    with pytest.raises(ValueError, match="as many predictions"):
        classification_metrics(["a"], [])
    per_lang = head_metrics(["a", None, "b"], ["a", "a", "a"], ["en", "en", "zh"])
    assert per_lang["n"] == 2 and per_lang["by_lang"]["zh"]["accuracy"] == 0.0


def test_ngram_half_trains_beside_partial_sentiment_labels(base: Path, tmp_path: Path) -> None:
    """Partial labels (neutral|positive) train the network; the n-gram half learns from full labels only."""
    rows = tiny_rows()
    partial = [{**r, "label": "neutral|positive"} for r in rows if r["label"] != "negative"][:4]
    args = TrainingArgs(epochs=1, batch_size=4, lr=1e-3, max_length=24, seed=3, ngram_weight=0.3,
                        ngram_analysers="char")
    result = train_multitask(base, [*rows, *partial], [], args, tmp_path / "m")
    assert result.spec.ngram_weight == 0.3 and (tmp_path / "m" / "ngram.json").is_file()
    steps: list[int] = []
    only_partial = [{**r, "label": "neutral|positive"} if r.get("label") else r for r in rows]
    with pytest.raises(ModelError, match="n-gram sentiment head needs rows of at least two classes"):
        train_multitask(base, only_partial, [], args, tmp_path / "n", on_step=lambda done, total: steps.append(done))
    assert steps == []  # refused before the network trained a step
