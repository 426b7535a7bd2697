"""The training loop: early stopping keeps the best epoch, masked losses per head, event weights,
and metrics that agree with scikit-learn's definitions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from finsentinel.errors import ConfigError
from tests.tiny_model import TINY_TOPICS, make_tiny_base_dir, tiny_rows
from training import loop as loop_module
from training.args import TrainingArgs
from training.encoder import load_base
from training.loop import (
    IGNORE,
    class_weights,
    encode_rows,
    event_pos_weights,
    partial_label_loss,
    selection_score,
)
from training.metrics import classification_metrics, multilabel_metrics
from training.optim import build_optimizer, depth
from training.train import train_multitask

FAST = TrainingArgs(epochs=4, batch_size=4, lr=1e-3, max_length=24, warmup_ratio=0.0, seed=3, patience=1)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base_dir(tmp_path_factory.mktemp("base") / "bert")


def test_early_stopping_restores_the_best_epoch(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scores = iter([0.5, 0.9, 0.4, 0.3])  # best at epoch 2; epoch 3 is worse, patience 1 stops there
    snapshots: list[dict[str, torch.Tensor]] = []
    real_snapshot = loop_module._snapshot

    def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        state = real_snapshot(model)
        snapshots.append(state)
        return state

    monkeypatch.setattr(loop_module, "selection_score", lambda metrics: next(scores))
    monkeypatch.setattr(loop_module, "_snapshot", snapshot)
    messages: list[str] = []
    result = train_multitask(base, tiny_rows(), tiny_rows()[:6], FAST, tmp_path / "m", messages.append)
    assert result.best_epoch == 2 and [h["epoch"] for h in result.history] == [1, 2, 3]
    assert any("early stopping: no gain for 1 epochs, keeping epoch 2" in m for m in messages)
    assert result.steps == 3 * 3  # 12 rows / batch 4, three epochs run
    from nlp.model import load_model

    saved = load_model(tmp_path / "m").model.state_dict()
    assert all(torch.equal(saved[k], snapshots[-1][k]) for k in ("topic_head.weight", "sentiment_head.bias"))


def test_without_validation_rows_every_epoch_runs(base: Path, tmp_path: Path) -> None:
    result = train_multitask(base, tiny_rows(), [], FAST, tmp_path / "m")
    assert result.best_epoch == 4 and result.history == [] and result.steps == 12


def test_event_rows_train_the_event_head(base: Path, tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [*tiny_rows(), {"text": "公司信披违规", "events": ["信批违规"]},
                                  {"text": "公告", "events": ["其他"]}]
    result = train_multitask(base, rows, rows[-2:], FAST, tmp_path / "m")
    assert result.spec.events == tuple(sorted(("信批违规", "其他")))
    assert result.metrics["events"]["n"] == 2
    with pytest.raises(ConfigError, match="event types \\['涉嫌传销'\\] do not occur"):
        train_multitask(base, rows, [{"text": "x", "events": ["涉嫌传销"]}], FAST, tmp_path / "n")
    with pytest.raises(ConfigError, match="list of event types"):
        bad: list[dict[str, Any]] = [*rows, {"text": "x", "events": "信批违规"}]
        train_multitask(base, bad, [], FAST, tmp_path / "n")


def test_encoding_marks_missing_labels() -> None:
    data = encode_rows([{"text": "a", "label": "negative"}, {"text": "b", "topic": "T"},
                        {"text": "c", "events": ["E"]}], ["T"], ["E"], "train")
    assert data.sentiments.tolist() == [0, IGNORE, IGNORE] and data.topics.tolist() == [IGNORE, 0, IGNORE]
    assert data.has_events.tolist() == [False, False, True] and data.events[2].tolist() == [1.0]


def test_partial_labels_encode_as_allowed_sets() -> None:
    data = encode_rows([{"text": "a", "label": "negative"}, {"text": "b", "label": "neutral|positive"}],
                       ["T"], [], "train")
    assert data.sentiments.tolist() == [0, IGNORE]
    assert data.sentiment_sets.tolist() == [[False, False, False], [False, True, True]]
    with pytest.raises(ConfigError, match="row 0: sentiment label 'negative|bogus'"):
        encode_rows([{"text": "a", "label": "negative|bogus"}], ["T"], [], "train")


def test_partial_label_loss_is_the_likelihood_of_the_set() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]], requires_grad=True)
    allowed = torch.tensor([[False, True, True], [False, True, True]])
    probs = torch.softmax(logits, -1).detach()
    expected = -torch.log(probs[:, 1] + probs[:, 2]).mean()
    loss = partial_label_loss(logits, allowed)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert logits.grad is not None and bool((logits.grad[:, 0] > 0).all())  # descent lowers 'negative'
    assert logits.grad[1, 1].item() == pytest.approx(logits.grad[1, 2].item())  # no preference inside the set


def test_partial_rows_train_the_sentiment_head(base: Path, tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [{"text": t, "label": "neutral|positive", "lang": "en"}
                                  for t in ("fine day", "ok results", "calm market", "steady quarter")]
    rows += [{"text": "fraud probe widens", "topic": TINY_TOPICS[0], "lang": "en"}]
    model = train_multitask(base, rows, [], TrainingArgs(epochs=3, batch_size=5, lr=1e-2, max_length=24,
                                                         warmup_ratio=0.0, seed=1, patience=0), tmp_path / "m")
    from nlp.model import load_model
    from nlp.torch_backend import predict_proba

    loaded = load_model(tmp_path / "m")
    probs = predict_proba(loaded.model, loaded.tokenizer, [str(r["text"]) for r in rows[:4]], max_length=24)[1]
    assert model.steps == 3 and bool((probs[:, 0] < 0.2).all())  # learned: these are not negative


def test_class_and_event_weights() -> None:
    targets = torch.tensor([0, 0, 0, 1, IGNORE])
    assert class_weights(targets, 3, True).tolist() == pytest.approx([4 / 6, 2.0, 0.0])
    assert class_weights(targets, 3, False).tolist() == [1.0, 1.0, 1.0]
    events = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    weights = event_pos_weights(events, torch.tensor([True, True, True, False]), True)
    assert weights.tolist() == pytest.approx([1.0, 2 ** 0.5])


def test_selection_score_averages_labelled_heads() -> None:
    metrics: dict[str, Any] = {"sentiment": {"n": 3, "macro_f1": 0.5}, "topic": {"n": 0}, "events": {"n": 2, "macro_f1": 0.7}}
    assert selection_score(metrics) == pytest.approx(0.6) and selection_score({}) == 0.0


def test_metrics_match_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y_true = ["a", "a", "b", "c", "c", "c", "b", "a"]
    y_pred = ["a", "b", "b", "c", "a", "c", "d", "a"]
    ours = classification_metrics(y_true, y_pred)
    labels = sorted(set(y_true) | set(y_pred))
    assert ours["macro_f1"] == round(sklearn_metrics.f1_score(y_true, y_pred, average="macro", labels=labels), 4)
    assert ours["weighted_f1"] == round(sklearn_metrics.f1_score(y_true, y_pred, average="weighted"), 4)
    assert ours["confusion"] == sklearn_metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert ours["per_class"]["a"]["precision"] == round(2 / 3, 4) and ours["per_class"]["a"]["support"] == 3
    fixed = classification_metrics(["x"], ["x"], labels=["y", "x"])
    assert fixed["labels"] == ["y", "x"] and fixed["confusion"] == [[0, 0], [0, 1]] and fixed["macro_f1"] == 1.0
    multi = multilabel_metrics([["a"], ["a", "b"], ["c"]], [["a"], ["a"], ["b"]], ["a", "b", "c"])
    # a: tp 2; b: fn 1, fp 1; c: fn 1 -> micro = 2*2 / (2*2 + 1 + 2) ; macro = (1 + 0 + 0) / 3
    assert multi["micro_f1"] == round(4 / 7, 4) and multi["macro_f1"] == round(1 / 3, 4)
    assert multi["exact_match"] == round(1 / 3, 4) and multilabel_metrics([], [], ["a"]) == {"n": 0}


class Crash(Exception):
    pass


# mid-epoch, and just after an epoch boundary; with embedding offsets (training.row_embeddings) too; and
# as the Chinese recipe trains: bf16 autocast, frozen word embeddings, heads at their own learning rate
@pytest.mark.parametrize(("crash_at", "rows", "bf16"), [(2, "all", False), (5, "all", False), (5, "used", False),
                                                        (5, "all", True)])
def test_a_crashed_run_resumes_to_the_same_weights(
    base: Path, tmp_path: Path, crash_at: int, rows: str, bf16: bool
) -> None:
    args = TrainingArgs(epochs=2, batch_size=2, lr=1e-3, max_length=24, warmup_ratio=0.25, seed=5, patience=0,
                        embedding_rows=rows, bf16=bf16, train_embeddings=not bf16, head_lr=3e-3 if bf16 else 0.0)
    data = tiny_rows()[:8]
    straight = train_multitask(base, data, data[:4], args, tmp_path / "straight")
    ckpt = tmp_path / "ckpt"

    def crash(done: int, total: int) -> None:
        if done == crash_at:
            raise Crash

    with pytest.raises(Crash):
        train_multitask(base, data, data[:4], args, tmp_path / "m", on_step=crash, checkpoint_dir=ckpt)
    assert (ckpt / "checkpoint.json").is_file() and not (tmp_path / "m").exists()
    messages: list[str] = []
    resumed = train_multitask(base, data, data[:4], args, tmp_path / "m", messages.append, checkpoint_dir=ckpt)
    assert any(m.startswith(f"resumed from {ckpt}") for m in messages)
    assert resumed.steps == straight.steps == 8 and resumed.history[-1]["score"] == straight.history[-1]["score"]
    assert resumed.spec.weights_sha256 == straight.spec.weights_sha256
    assert not ckpt.exists()  # removed once the model is written


def test_a_checkpoint_of_other_arguments_is_not_resumed(base: Path, tmp_path: Path) -> None:
    args = TrainingArgs(epochs=1, batch_size=4, lr=1e-3, max_length=24, seed=5)
    ckpt = tmp_path / "ckpt"

    def crash(done: int, total: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        train_multitask(base, tiny_rows(), [], args, tmp_path / "m", on_step=crash, checkpoint_dir=ckpt)
    messages: list[str] = []
    other = TrainingArgs(epochs=1, batch_size=4, lr=2e-3, max_length=24, seed=5)
    train_multitask(base, tiny_rows(), [], other, tmp_path / "m", messages.append, checkpoint_dir=ckpt)
    assert not any(m.startswith("resumed") for m in messages)


def test_heads_can_learn_faster_than_the_encoder(base: Path) -> None:
    from transformers import AutoModel

    from nlp.model import MultiTaskModel

    model = MultiTaskModel(AutoModel.from_pretrained(base), n_topics=3, n_events=2)
    head_ids = {id(p) for n, p in model.named_parameters() if not n.startswith("encoder.")}
    embeddings = model.encoder.get_input_embeddings().weight
    for head_lr, want in ((0.0, 1e-4), (5e-3, 5e-3)):
        args = TrainingArgs(lr=1e-4, head_lr=head_lr, embedding_lr=3e-3, train_embeddings=False)
        groups = build_optimizer(model, args).param_groups
        lrs = {id(p): g["lr"] for g in groups for p in g["params"]}
        assert len(head_ids) == 6 and all(lrs[i] == want for i in head_ids)
        assert {lr for i, lr in lrs.items() if i not in head_ids} == {1e-4}
        assert id(embeddings) not in lrs and not embeddings.requires_grad
    groups = build_optimizer(model, TrainingArgs(lr=1e-4, embedding_lr=3e-3)).param_groups
    assert [g["lr"] for g in groups if any(p is embeddings for p in g["params"])] == [3e-3]


def test_encoder_depth_of_parameter_names() -> None:
    assert depth("embeddings.position_embeddings.weight", 12) == 0
    assert depth("encoder.layer.0.attention.self.query.weight", 12) == 1
    assert depth("encoder.layer.11.output.dense.bias", 12) == 12
    assert depth("transformer.layer.5.ffn.lin1.weight", 6) == 6
    assert depth("pooler.dense.weight", 12) == 12


def test_layer_wise_learning_rate_decay(base: Path) -> None:
    from transformers import AutoModel

    from nlp.model import MultiTaskModel

    model = MultiTaskModel(AutoModel.from_pretrained(base), n_topics=3)
    args = TrainingArgs(lr=1e-3, head_lr=5e-3, layer_lr_decay=0.5, train_embeddings=False)
    lrs = {id(p): g["lr"] for g in build_optimizer(model, args).param_groups for p in g["params"]}
    want = {"encoder.embeddings.LayerNorm.weight": 2.5e-4, "encoder.encoder.layer.0.output.dense.weight": 5e-4,
            "encoder.encoder.layer.1.output.dense.weight": 1e-3, "encoder.pooler.dense.weight": 1e-3,
            "topic_head.weight": 5e-3}
    params = dict(model.named_parameters())
    assert {name: lrs[id(params[name])] for name in want} == pytest.approx(want)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(lrs) == len(trainable)  # every trainable weight in exactly one group


def test_layer_wise_decay_without_numbered_layers_is_a_clear_error() -> None:
    from nlp.model import MultiTaskModel

    class Flat(torch.nn.Module):  # an encoder with no numbered layers and no layer count
        def __init__(self) -> None:
            super().__init__()
            self.config = SimpleNamespace(hidden_size=8)
            self.embeddings = torch.nn.Embedding(10, 8)
            self.dense = torch.nn.Linear(8, 8)

        def get_input_embeddings(self) -> torch.nn.Module:
            return self.embeddings

    model = MultiTaskModel(Flat(), n_topics=3)  # type: ignore[arg-type]
    assert build_optimizer(model, TrainingArgs(train_embeddings=False)).param_groups  # no decay asked: fine
    with pytest.raises(ConfigError, match="layer_lr_decay 0.9 needs an encoder with numbered layers") as error:
        build_optimizer(model, TrainingArgs(layer_lr_decay=0.9, train_embeddings=False))
    assert "has no config.num_hidden_layers and no parameters named like 'layer.N.'" in str(error.value)
    model.encoder.config.num_hidden_layers = 2  # a layer count, but still no numbered parameter names
    with pytest.raises(ConfigError, match=r"Flat has no parameters named like 'layer\.N\.':"):
        build_optimizer(model, TrainingArgs(layer_lr_decay=0.9, train_embeddings=False))


def test_label_smoothing_reaches_the_topic_and_sentiment_losses(base: Path) -> None:
    from nlp.model import MultiTaskModel

    tokenizer, encoder = load_base(base)
    model = MultiTaskModel(encoder, n_topics=len(TINY_TOPICS))
    data = encode_rows(tiny_rows(), TINY_TOPICS, [], "train")
    for smoothing in (0.0, 0.2):
        args = TrainingArgs(label_smoothing=smoothing, train_embeddings=False)
        losses = loop_module._setup(model, tokenizer, data, args, lambda m: None, None).losses
        assert losses.topic.label_smoothing == losses.sentiment.label_smoothing == smoothing


def test_training_the_used_rows_equals_training_every_row(base: Path, tmp_path: Path) -> None:
    from nlp.model import load_model

    rows = tiny_rows()
    args = TrainingArgs(epochs=2, batch_size=4, lr=1e-3, embedding_lr=3e-2, max_length=24, seed=5, patience=0)
    dense = train_multitask(base, rows, [], args, tmp_path / "dense")
    messages: list[str] = []
    used = replace(args, embedding_rows="used")
    offsets = train_multitask(base, rows, [], used, tmp_path / "used", messages.append)
    assert any(m.startswith("word embeddings: training the ") for m in messages)
    a, b = (load_model(tmp_path / d).model.state_dict() for d in ("dense", "used"))
    assert a.keys() == b.keys() and dense.steps == offsets.steps
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    table = "encoder.embeddings.word_embeddings.weight"
    original = load_base(base)[1].get_input_embeddings().weight
    moved = (b[table][: original.shape[0]] != original).any(-1)
    assert 0 < int(moved.sum()) < moved.shape[0]  # the texts' rows moved, the others did not


class _Holder(torch.nn.Module):
    """The two methods of a Hugging Face model that training.row_embeddings uses."""

    def __init__(self, table: torch.nn.Module) -> None:
        super().__init__()
        self.table = table

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.table

    def set_input_embeddings(self, table: torch.nn.Module) -> None:
        self.table = table


def test_row_offsets_fold_into_a_plain_embedding() -> None:
    from training.row_embeddings import RowOffsetEmbedding, attach, fold

    encoder = _Holder(torch.nn.Embedding(6, 3, padding_idx=0))
    before = encoder.table.weight.detach().clone()
    wrapped = attach(encoder, [0, 2, 4, 4])
    assert isinstance(encoder.table, RowOffsetEmbedding) and wrapped.offsets.shape == (2, 3)  # padding excluded
    assert not wrapped.base.weight.requires_grad
    with torch.no_grad():
        wrapped.offsets.fill_(1.0)
    ids = torch.tensor([[0, 2, 3, 4]])
    want = before[ids] + torch.tensor([0.0, 1.0, 0.0, 1.0]).view(1, 4, 1)
    assert torch.equal(wrapped(ids), want)
    fold(encoder)
    assert type(encoder.table) is torch.nn.Embedding and torch.equal(encoder.table(ids), want)
    with pytest.raises(TypeError, match="expected an nn.Embedding"):
        attach(_Holder(torch.nn.Linear(2, 2)), [1])


def test_a_checkpoint_directory_that_holds_something_else_is_refused(base: Path, tmp_path: Path) -> None:
    """--checkpoint is replaced every quarter epoch and deleted at the end: never over other files."""
    args = TrainingArgs(epochs=1, batch_size=4, lr=1e-3, max_length=24, seed=5)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "keep.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a checkpoint directory"):
        train_multitask(base, tiny_rows(), [], args, tmp_path / "m", checkpoint_dir=notes)
    assert (notes / "keep.txt").read_text(encoding="utf-8") == "keep me" and not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="the same directory as the model"):
        train_multitask(base, tiny_rows(), [], args, tmp_path / "m", checkpoint_dir=tmp_path / "m")


def test_event_types_the_model_lacks_count_as_missed() -> None:
    """`evaluate --task events` on a file with a type the model has no output for: each is a false negative."""
    multi = multilabel_metrics([["a", "x"], ["b"]], [["a"], ["b"]], ["a", "b"])
    assert multi["micro_f1"] == round(2 * 2 / (2 * 2 + 0 + 1), 4) and multi["exact_match"] == 0.5
    assert multi["per_class"]["x"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert multi["macro_f1"] == round(2 / 3, 4)
