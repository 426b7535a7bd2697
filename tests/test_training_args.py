"""TrainingArgs: every field is checked, errors name the field, the value and what was expected."""

from __future__ import annotations

import dataclasses

import pytest

from finsentinel.errors import ConfigError
from training.args import TrainingArgs


def test_defaults_are_valid_and_frozen() -> None:
    args = TrainingArgs()
    with pytest.raises(dataclasses.FrozenInstanceError):
        args.epochs = 9  # type: ignore[misc]
    assert TrainingArgs.from_dict(args.to_dict()) == args


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("epochs", 2.5),
        ("lr", 0),
        ("lr", 1.5),
        ("lr", True),
        ("embedding_lr", -1.0),
        ("head_lr", -0.1),
        ("head_lr", 1.0),
        ("layer_lr_decay", 0),
        ("layer_lr_decay", 1.5),
        ("label_smoothing", -0.1),
        ("label_smoothing", 1.0),
        ("batch_size", 0),
        ("max_length", 4),
        ("max_length", 1024),
        ("seed", -1),
        ("warmup_ratio", 1.0),
        ("weight_decay", -0.1),
        ("class_weights", "yes"),
        ("threads", -2),
        ("pooling", "max"),
        ("dropout", 1.0),
        ("extend_vocab", 1),
        ("train_embeddings", "no"),
        ("bf16", 1),
    ],
)
def test_bad_value_is_named(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"{field}: expected .*got {value!r}"):
        TrainingArgs(**{field: value})  # type: ignore[arg-type]


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError, match=r"epochs: .*; lr: "):
        TrainingArgs(epochs=0, lr=0)


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown training arguments \['epoch'\]"):
        TrainingArgs.from_dict({"epoch": 3})
