"""Training arguments: one checked, frozen record, stored verbatim in every model card."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from finsentinel.errors import ConfigError
from nlp.ngram import ANALYSERS


@dataclass(frozen=True, slots=True)
class TrainingArgs:
    """Hyper-parameters of :func:`training.train.train_multitask`; bad values raise :class:`ConfigError`."""

    epochs: int = 4
    lr: float = 1e-4
    embedding_lr: float = 3e-3
    """Learning rate of the word embeddings (new vocabulary rows start untrained and need a larger step)."""
    head_lr: float = 0.0
    """Learning rate of the heads; 0 uses ``lr``. Freshly initialised heads learn slowly at an encoder's
    fine-tuning rate (SetFit trains its head at 1e-2 for the same reason): on multilingual-e5-small,
    2 epochs over 3,000 rows per task, 3e-3 against 1e-4 took THUCNews accuracy from 0.804 to 0.843
    and FinESE event micro-F1 from 0.04 to 0.29."""
    layer_lr_decay: float = 1.0
    """Layer-wise learning-rate decay: encoder layer i of n learns at ``lr * layer_lr_decay ** (n - 1 - i)``,
    the embeddings below them one step lower still (1: every layer at ``lr``)."""
    label_smoothing: float = 0.0
    """Label smoothing of the topic and sentiment losses (0: none); softens noisy labels."""
    batch_size: int = 32
    max_length: int = 64
    seed: int = 13
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    class_weights: bool = True
    threads: int = 0
    """torch CPU threads during training; 0 leaves torch's default."""
    bf16: bool = False
    """Run forward and backward passes in bfloat16 under torch's CPU autocast (weights, gradients and
    optimiser state stay float32). Pays off on CPUs with AVX-512 BF16 or AMX: 2.3x faster steps for
    multilingual-e5-small on the 2-core build VM; on other CPUs it can be slower."""
    pooling: str = "mean"
    dropout: float = 0.1
    extend_vocab: bool = True
    """Add unknown characters of the training texts (Chinese, for English bases) to the vocabulary."""
    train_embeddings: bool = True
    """Update the word embeddings. Off keeps them as pre-trained: for a large multilingual vocabulary
    (250k rows) it saves most of each optimiser step's work and most of the model's trainable weights."""
    embedding_rows: str = "all"
    """With ``train_embeddings``: 'all' trains the table as one dense parameter; 'used' trains offsets for
    the rows the training texts use (the same updates: rows no text uses get no gradient and no weight
    decay), which keeps a 250k-row multilingual table affordable (see training.row_embeddings)."""
    ngram_weight: float = 0.0
    """Also fit a TF-IDF n-gram logistic regression per head and average its probabilities with this
    weight (0: network only); see nlp.ngram."""
    ngram_analysers: str = "word+char"
    """'word+char' (word 1-2 + char_wb 2-5 grams, for English) or 'char' (char 1-3 grams, for Chinese)."""
    ngram_c: float = 10.0
    """Inverse regularisation strength of the n-gram logistic regressions."""
    patience: int = 2
    """Early stopping: stop after this many epochs without a better validation macro-F1 (0: never stop
    early). With validation rows the weights of the best epoch are kept either way."""

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("epochs", isinstance(self.epochs, int) and 1 <= self.epochs <= 100, "an integer in 1..100"),
            ("lr", _number(self.lr) and 0 < self.lr < 1, "a number in (0, 1)"),
            ("embedding_lr", _number(self.embedding_lr) and 0 < self.embedding_lr < 1, "a number in (0, 1)"),
            ("head_lr", _number(self.head_lr) and 0 <= self.head_lr < 1, "a number in [0, 1) (0: same as lr)"),
            (
                "layer_lr_decay",
                _number(self.layer_lr_decay) and 0 < self.layer_lr_decay <= 1,
                "a number in (0, 1] (1: no decay)",
            ),
            (
                "label_smoothing",
                _number(self.label_smoothing) and 0 <= self.label_smoothing < 1,
                "a number in [0, 1)",
            ),
            (
                "batch_size",
                isinstance(self.batch_size, int) and 1 <= self.batch_size <= 4096,
                "an integer in 1..4096",
            ),
            (
                "max_length",
                isinstance(self.max_length, int) and 8 <= self.max_length <= 512,
                "an integer in 8..512",
            ),
            ("seed", isinstance(self.seed, int) and self.seed >= 0, "an integer >= 0"),
            ("warmup_ratio", _number(self.warmup_ratio) and 0 <= self.warmup_ratio < 1, "a number in [0, 1)"),
            ("weight_decay", _number(self.weight_decay) and 0 <= self.weight_decay < 1, "a number in [0, 1)"),
            ("class_weights", isinstance(self.class_weights, bool), "true or false"),
            (
                "threads",
                isinstance(self.threads, int) and 0 <= self.threads <= 1024,
                "an integer >= 0 (0 = torch default)",
            ),
            ("bf16", isinstance(self.bf16, bool), "true or false"),
            ("pooling", self.pooling in ("mean", "cls"), "'mean' or 'cls'"),
            ("dropout", _number(self.dropout) and 0 <= self.dropout < 1, "a number in [0, 1)"),
            ("extend_vocab", isinstance(self.extend_vocab, bool), "true or false"),
            ("train_embeddings", isinstance(self.train_embeddings, bool), "true or false"),
            ("embedding_rows", self.embedding_rows in ("all", "used"), "'all' or 'used'"),
            ("ngram_weight", _number(self.ngram_weight) and 0 <= self.ngram_weight < 1, "a number in [0, 1)"),
            ("ngram_analysers", self.ngram_analysers in ANALYSERS, " or ".join(map(repr, ANALYSERS))),
            ("ngram_c", _number(self.ngram_c) and self.ngram_c > 0, "a number > 0"),
            ("patience", isinstance(self.patience, int) and 0 <= self.patience <= 100, "an integer in 0..100"),
        ]
        bad = [f"{name}: expected {want}, got {getattr(self, name)!r}" for name, ok, want in checks if not ok]
        if bad:
            raise ConfigError("invalid training arguments: " + "; ".join(bad))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for model cards and cache keys."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingArgs:
        """Build from a dict, rejecting unknown keys with :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training arguments {unknown}; expected some of {sorted(known)}")
        return cls(**data)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
