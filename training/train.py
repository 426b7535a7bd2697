"""Multi-task fine-tuning: one shared encoder, a topic head and a sentiment head, trained together.

Each training row is a mapping with ``text`` and at least one of ``label`` (sentiment:
negative / neutral / positive) and ``topic``; ``lang`` is optional (metrics are broken down by it).
The loss is the sum of the two heads' (optionally class-weighted) cross-entropies over the rows
that carry each label. The model is written to a temporary directory beside ``out_dir`` and
renamed into place, so a crash never leaves a half-written model directory.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from finsentinel.errors import ConfigError, ModelError
from finsentinel.schema import SENTIMENTS
from nlp.model import SPEC_FILE, ModelSpec, MultiTaskModel, Pooling, label_index, save_model
from nlp.vocab import extend_vocab
from training.args import TrainingArgs
from training.card import build_card, describe_rows
from training.encoder import base_fingerprint, load_base, resolve_base_model
from training.metrics import evaluate, metrics_line

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
IGNORE = -100


@dataclass(frozen=True)
class TrainResult:
    """Where the model went and how it did."""

    model_dir: Path
    spec: ModelSpec
    metrics: dict[str, Any]
    seconds: float
    steps: int
    added_tokens: int
    extra_metrics: dict[str, dict[str, Any]]
    """Metrics on the ``extra_eval`` sets, by name."""

    @property
    def version(self) -> str:
        """Model name plus short weights hash, as recorded on scored items."""
        return f"{self.spec.name}@{self.spec.weights_sha256[:12]}"


@dataclass(frozen=True)
class _Encoded:
    texts: list[str]
    topics: torch.Tensor
    sentiments: torch.Tensor
    langs: list[str]


def _encode_rows(rows: Sequence[Mapping[str, Any]], topic_ids: dict[str, int], split: str) -> _Encoded:
    sentiment_ids = label_index(SENTIMENTS)
    texts, topics, sentiments, langs = [], [], [], []
    for n, row in enumerate(rows):
        text, topic, label = row.get("text"), row.get("topic"), row.get("label")
        if not isinstance(text, str) or (topic is None and label is None):
            raise ConfigError(
                f"{split} row {n}: expected 'text' and a 'label' and/or 'topic', got {dict(row)!r:.200}"
            )
        if label is not None and label not in sentiment_ids:
            raise ConfigError(f"{split} row {n}: sentiment label {label!r} is not one of {list(SENTIMENTS)}")
        if topic is not None and topic not in topic_ids:
            raise ConfigError(f"{split} row {n}: topic {topic!r} does not occur in the training rows")
        texts.append(text)
        topics.append(IGNORE if topic is None else topic_ids[topic])
        sentiments.append(IGNORE if label is None else sentiment_ids[label])
        langs.append(str(row.get("lang", "?")))
    return _Encoded(
        texts, torch.tensor(topics, dtype=torch.long), torch.tensor(sentiments, dtype=torch.long), langs
    )


def _class_weights(targets: torch.Tensor, n_classes: int, enabled: bool) -> torch.Tensor:
    """Inverse-frequency weights (mean 1 over present classes); all ones when disabled."""
    counts = torch.bincount(targets[targets != IGNORE], minlength=n_classes).float()
    if not enabled or counts.sum() == 0:
        return torch.ones(n_classes)
    present = counts > 0
    weights = torch.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def _optimizer(model: MultiTaskModel, args: TrainingArgs) -> torch.optim.Optimizer:
    embeddings = model.encoder.get_input_embeddings().weight
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        if param is embeddings:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": args.weight_decay, "lr": args.lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": args.lr},
        {"params": [embeddings], "weight_decay": 0.0, "lr": args.embedding_lr},
    ]
    return torch.optim.AdamW(groups, lr=args.lr)


def _head_loss(logits: torch.Tensor, targets: torch.Tensor, loss_fn: nn.Module) -> torch.Tensor | None:
    if bool((targets == IGNORE).all()):
        return None
    return loss_fn(logits, targets)


def _batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled batches of similar-length rows: shuffle, sort within pools of 16 batches, shuffle batches.

    Padding to the longest row of a batch then wastes little compute (about half, on headlines).
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool = batch_size * 16
    batches: list[torch.Tensor] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [torch.tensor(chunk[i : i + batch_size]) for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _train_loop(
    model: MultiTaskModel, tokenizer: Any, data: _Encoded, args: TrainingArgs, report: Progress
) -> int:
    n_topics = model.topic_head.out_features
    topic_loss = nn.CrossEntropyLoss(
        weight=_class_weights(data.topics, n_topics, args.class_weights), ignore_index=IGNORE
    )
    sentiment_loss = nn.CrossEntropyLoss(
        weight=_class_weights(data.sentiments, len(SENTIMENTS), args.class_weights), ignore_index=IGNORE
    )
    steps_per_epoch = (len(data.texts) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    optimizer = _optimizer(model, args)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total * args.warmup_ratio), total)
    generator = torch.Generator().manual_seed(args.seed)
    lengths = [
        len(ids) for ids in tokenizer(data.texts, truncation=True, max_length=args.max_length)["input_ids"]
    ]
    every = max(1, steps_per_epoch // 4)
    started = time.perf_counter()
    model.train()
    step = 0
    for epoch in range(1, args.epochs + 1):
        running, seen = 0.0, 0
        for batch_no, index in enumerate(_batches(lengths, args.batch_size, generator), start=1):
            batch = tokenizer(
                [data.texts[i] for i in index.tolist()],
                padding=True,
                truncation=True,
                max_length=args.max_length,
                return_tensors="pt",
            )
            topic_logits, sentiment_logits = model(batch)
            losses = [
                loss
                for loss in (
                    _head_loss(topic_logits, data.topics[index], topic_loss),
                    _head_loss(sentiment_logits, data.sentiments[index], sentiment_loss),
                )
                if loss is not None
            ]
            loss = torch.stack(losses).sum()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            running, seen = running + float(loss.detach()), seen + 1
            if batch_no % every == 0 or batch_no == steps_per_epoch:
                report(
                    f"epoch {epoch}/{args.epochs} step {batch_no}/{steps_per_epoch} "
                    f"loss {running / seen:.3f} "
                    f"({time.perf_counter() - started:.0f}s)"
                )
                running, seen = 0.0, 0
    return step


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move the finished ``tmp`` to ``out_dir``, replacing an older model there."""
    os.chmod(tmp, 0o755)  # noqa: S103 - a model directory is meant to be readable by its users
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (
        not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / SPEC_FILE).exists())
    ):
        raise ModelError(
            f"refusing to write a model over {out_dir}: it exists and is not a FinSentinel model "
            "directory; choose another nlp.model_dir or remove it yourself"
        )


@dataclass
class _Fitted:
    model: MultiTaskModel
    tokenizer: Any
    added: int
    steps: int
    seconds: float
    threads: int


def _fit(
    base_path: Path, data: _Encoded, topics: Sequence[str], args: TrainingArgs, report: Progress
) -> _Fitted:
    """Load the base, extend its vocabulary, train both heads; torch's thread count is restored after."""
    previous_threads = torch.get_num_threads()
    started = time.perf_counter()
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        _seed_everything(args.seed)
        tokenizer, encoder = load_base(base_path)
        added = extend_vocab(tokenizer, encoder, data.texts, seed=args.seed) if args.extend_vocab else 0
        if added:
            report(f"vocabulary: added {added} characters of the training texts")
        pooling = cast(Pooling, args.pooling)
        model = MultiTaskModel(encoder, len(topics), len(SENTIMENTS), pooling, args.dropout)
        report(f"training on {len(data.texts)} rows, {args.epochs} epochs, {torch.get_num_threads()} threads")
        steps = _train_loop(model, tokenizer, data, args, report)
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous_threads)
    return _Fitted(model, tokenizer, added, steps, round(time.perf_counter() - started, 1), threads)


def _write_atomically(out: Path, write: Callable[[Path], ModelSpec]) -> ModelSpec:
    """Run ``write`` into a fresh temporary directory beside ``out``, then rename it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        spec = write(tmp)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return spec


def train_multitask(
    base_model: str | Path,
    rows_train: Sequence[Mapping[str, Any]],
    rows_valid: Sequence[Mapping[str, Any]],
    args: TrainingArgs,
    out_dir: str | Path,
    progress: Progress | None = None,
    *,
    name: str = "finsentinel",
    data_sources: Mapping[str, Any] | None = None,
    extra_eval: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    card_extra: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Fine-tune ``base_model`` on both tasks and write the model directory ``out_dir`` atomically.

    ``progress`` receives lines such as ``epoch 2/4 step 30/48 loss 0.412 (41s)``.
    ``extra_eval`` names further labelled sets to score after training (reported in the card
    beside the validation metrics); ``data_sources`` (files, hashes, notes) and ``card_extra`` go
    verbatim into the model card.
    Raises :class:`ConfigError` for bad rows or arguments, :class:`ModelError` for an unusable base.
    """
    if not isinstance(args, TrainingArgs):
        raise ConfigError(f"expected TrainingArgs, got {type(args).__name__}")
    out = Path(out_dir)
    _check_out_dir(out)
    topics = sorted({str(r["topic"]) for r in rows_train if r.get("topic") is not None})
    if not topics or not any(r.get("label") is not None for r in rows_train):
        raise ConfigError(
            "training rows need both topic and sentiment ('label') examples; got "
            f"{len(topics)} topics in {len(rows_train)} rows"
        )
    train_data = _encode_rows(rows_train, label_index(topics), "train")
    evaluations = {"valid": rows_valid, **(extra_eval or {})}
    for split, rows in evaluations.items():
        _encode_rows(rows, label_index(topics), split)  # fail before training, not after
    report = _reporter(progress)
    base_path = resolve_base_model(base_model)
    fitted = _fit(base_path, train_data, topics, args, report)
    scores = {
        k: evaluate(fitted.model, fitted.tokenizer, rows, topics, max_length=args.max_length)
        for k, rows in evaluations.items()
    }
    for k, m in scores.items():
        report(metrics_line("validation" if k == "valid" else k, m))
    metrics = scores.pop("valid")
    spec = ModelSpec(
        name=name,
        topics=tuple(topics),
        pooling=cast(Pooling, args.pooling),
        max_length=args.max_length,
        base_model=str(base_model),
    )
    base_info = {
        "name": str(base_model),
        "path": str(base_path),
        "sha256": base_fingerprint(base_path),
        "architecture": type(fitted.model.encoder).__name__,
    }
    data_info = {
        "train": describe_rows(rows_train),
        "valid": describe_rows(rows_valid),
        **(data_sources or {}),
    }
    data_info.update({f"eval:{k}": describe_rows(rows) for k, rows in (extra_eval or {}).items()})
    training = {
        "steps": fitted.steps,
        "seconds": fitted.seconds,
        "threads": fitted.threads,
        "added_tokens": fitted.added,
    }
    card = build_card(
        name,
        base_info,
        data_info,
        args.to_dict(),
        training,
        metrics,
        topics,
        {"extra_evaluations": scores, **(card_extra or {})},
    )
    final = _write_atomically(out, lambda tmp: save_model(fitted.model, fitted.tokenizer, spec, tmp, card))
    report(f"model written to {out} ({final.name}@{final.weights_sha256[:12]})")
    return TrainResult(
        model_dir=out,
        spec=final,
        metrics=metrics,
        seconds=fitted.seconds,
        steps=fitted.steps,
        added_tokens=fitted.added,
        extra_metrics=scores,
    )


def _reporter(progress: Progress | None) -> Progress:
    def report(message: str) -> None:
        if progress is not None:  # the caller decides where progress goes (the CLI logs it)
            progress(message)
        else:
            log.info("%s", message)

    return report
