"""The optimisation loop: encoded rows, length-bucketed shuffled batches, masked multi-task losses,
per-epoch validation with early stopping on macro-F1, and restoring the best epoch's weights.

Rows may carry any subset of the labels (sentiment, topic, risk events): each head's loss is taken
over the rows of the batch that carry its label, so sentiment-only and topic-only files train their
own head over the shared encoder in mixed batches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from finsentinel.errors import ConfigError
from finsentinel.schema import SENTIMENTS
from nlp.model import MultiTaskModel, label_index
from training.args import TrainingArgs
from training.checkpoint import Checkpointer, LoopState
from training.data import sentiment_choices
from training.optim import build_optimizer
from training.row_embeddings import attach, fold

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
Validate = Callable[[], dict[str, Any]]
StepHook = Callable[[int, int], None]
"""Called after every optimiser step with (steps done, planned steps), e.g. to drive a progress bar."""
IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    """Training rows as tensors; ``IGNORE`` marks a missing label, ``has_events`` rows with event labels.

    ``sentiment_sets`` (rows x sentiments, bool) holds partial sentiment labels (``neutral|positive``):
    such a row has ``IGNORE`` in ``sentiments`` and its allowed classes marked here.
    """

    texts: list[str]
    topics: torch.Tensor
    sentiments: torch.Tensor
    events: torch.Tensor
    has_events: torch.Tensor
    langs: list[str]
    sentiment_sets: torch.Tensor


def row_events(row: Mapping[str, Any]) -> list[str] | None:
    """The risk-event types of a row (``events``: a list of types), or None when it has none."""
    events = row.get("events")
    if events is None:
        return None
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        raise ConfigError(f"expected 'events' to be a list of event types, got {events!r:.120}")
    return list(events)


def encode_rows(
    rows: Sequence[Mapping[str, Any]], topics: Sequence[str], events: Sequence[str], split: str
) -> Encoded:
    """Check and encode rows; :class:`ConfigError` names the first bad row."""
    topic_ids, sentiment_ids, event_ids = label_index(topics), label_index(SENTIMENTS), label_index(events)
    texts, topic_t, sentiment_t, langs = [], [], [], []
    event_t = torch.zeros((len(rows), len(events)))
    has_events = torch.zeros(len(rows), dtype=torch.bool)
    sets = torch.zeros((len(rows), len(SENTIMENTS)), dtype=torch.bool)
    for n, row in enumerate(rows):
        text, topic, label = row.get("text"), row.get("topic"), row.get("label")
        try:
            row_ev = row_events(row)
        except ConfigError as exc:
            raise ConfigError(f"{split} row {n}: {exc}") from exc
        if not isinstance(text, str) or (topic is None and label is None and row_ev is None):
            raise ConfigError(
                f"{split} row {n}: expected 'text' and a 'label' and/or 'topic' (or 'events'), "
                f"got {dict(row)!r:.200}"
            )
        choices = None if label is None else sentiment_choices(str(label))
        if label is not None and choices is None:
            raise ConfigError(
                f"{split} row {n}: sentiment label {label!r} is not one of {list(SENTIMENTS)}; "
                "translate it with --label-map (e.g. Bearish=negative,Bullish=positive,Neutral=neutral)"
            )
        if topic is not None and topic not in topic_ids:
            raise ConfigError(f"{split} row {n}: topic {topic!r} does not occur in the training rows")
        if row_ev is not None:
            unknown = [e for e in row_ev if e not in event_ids]
            if unknown:
                raise ConfigError(f"{split} row {n}: event types {unknown} do not occur in the training rows")
            has_events[n] = True
            for e in row_ev:
                event_t[n, event_ids[e]] = 1.0
        texts.append(text)
        topic_t.append(IGNORE if topic is None else topic_ids[topic])
        sentiment_t.append(sentiment_ids[choices[0]] if choices is not None and len(choices) == 1 else IGNORE)
        if choices is not None and len(choices) > 1:
            sets[n, [sentiment_ids[c] for c in choices]] = True
        langs.append(str(row.get("lang", "?")))
    return Encoded(
        texts,
        torch.tensor(topic_t, dtype=torch.long),
        torch.tensor(sentiment_t, dtype=torch.long),
        event_t,
        has_events,
        langs,
        sets,
    )


def class_weights(targets: torch.Tensor, n_classes: int, enabled: bool) -> torch.Tensor:
    """Inverse-frequency weights (mean 1 over present classes); all ones when disabled."""
    counts = torch.bincount(targets[targets != IGNORE], minlength=n_classes).float()
    if not enabled or counts.sum() == 0:
        return torch.ones(n_classes)
    present = counts > 0
    weights = torch.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def event_pos_weights(events: torch.Tensor, has_events: torch.Tensor, enabled: bool) -> torch.Tensor:
    """BCE positive weights: negatives/positives per type, square-rooted and capped at 10 (rare types)."""
    n_events = events.shape[1]
    if not enabled or not bool(has_events.any()):
        return torch.ones(n_events)
    labelled = events[has_events]
    positives = labelled.sum(0)
    ratio = (labelled.shape[0] - positives) / positives.clamp(min=1.0)
    return ratio.sqrt().clamp(min=1.0, max=10.0)


def batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled batches of similar-length rows: shuffle, sort within pools of 16 batches, shuffle batches.

    Padding to the longest row of a batch then wastes little compute (about half, on headlines).
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool = batch_size * 16
    out: list[torch.Tensor] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        out += [torch.tensor(chunk[i : i + batch_size]) for i in range(0, len(chunk), batch_size)]
    return [out[i] for i in torch.randperm(len(out), generator=generator).tolist()]


@dataclass
class _Losses:
    topic: nn.Module
    sentiment: nn.Module
    events: nn.Module

    def total(self, logits: tuple[torch.Tensor, ...], data: Encoded, index: torch.Tensor) -> torch.Tensor:
        parts: list[torch.Tensor] = []
        topics, sentiments = data.topics[index], data.sentiments[index]
        if bool((topics != IGNORE).any()):
            parts.append(self.topic(logits[0], topics))
        if bool((sentiments != IGNORE).any()):
            parts.append(self.sentiment(logits[1], sentiments))
        sets = data.sentiment_sets[index]
        partial = sets.any(-1)
        if bool(partial.any()):
            parts.append(partial_label_loss(logits[1][partial], sets[partial]))
        mask = data.has_events[index]
        if len(logits) > 2 and bool(mask.any()):
            parts.append(self.events(logits[2][mask], data.events[index][mask]))
        return torch.stack(parts).sum()


def partial_label_loss(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Mean of -log P(label in allowed set): the likelihood of a partial label (rows x classes mask)."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return -torch.logsumexp(log_probs.masked_fill(~allowed, float("-inf")), dim=-1).mean()


def selection_score(metrics: Mapping[str, Any]) -> float:
    """What early stopping maximises: the mean macro-F1 of the heads that have validation labels."""
    scores = [float(m["macro_f1"]) for m in metrics.values() if isinstance(m, dict) and m.get("n")]
    return sum(scores) / len(scores) if scores else 0.0


@dataclass
class LoopResult:
    """Steps taken, the epoch whose weights were kept, and the validation history."""

    steps: int
    best_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class _Run:
    """What every step needs."""

    model: MultiTaskModel
    tokenizer: Any
    data: Encoded
    args: TrainingArgs
    report: Progress
    on_step: StepHook | None
    losses: _Losses
    optimizer: torch.optim.Optimizer
    scheduler: Any
    lengths: list[int]
    steps_per_epoch: int
    total: int
    started: float = field(default_factory=time.perf_counter)


def _setup(
    model: MultiTaskModel, tokenizer: Any, data: Encoded, args: TrainingArgs, report: Progress,
    on_step: StepHook | None,
) -> _Run:
    losses = _Losses(
        nn.CrossEntropyLoss(
            weight=class_weights(data.topics, model.topic_head.out_features, args.class_weights),
            ignore_index=IGNORE,
            label_smoothing=args.label_smoothing,
        ),
        nn.CrossEntropyLoss(
            weight=class_weights(data.sentiments, len(SENTIMENTS), args.class_weights),
            ignore_index=IGNORE,
            label_smoothing=args.label_smoothing,
        ),
        nn.BCEWithLogitsLoss(pos_weight=event_pos_weights(data.events, data.has_events, args.class_weights)),
    )
    steps_per_epoch = (len(data.texts) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    encoded = tokenizer(data.texts, truncation=True, max_length=args.max_length)["input_ids"]
    if args.train_embeddings and args.embedding_rows == "used":
        table = attach(model.encoder, (token for ids in encoded for token in ids))
        report(f"word embeddings: training the {table.offsets.shape[0]} rows the training texts use")
    optimizer = build_optimizer(model, args)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total * args.warmup_ratio), total)
    lengths = [len(ids) for ids in encoded]
    return _Run(model, tokenizer, data, args, report, on_step, losses, optimizer, scheduler, lengths,
                steps_per_epoch, total)


def _run_epoch(
    run: _Run, state: LoopState, epoch_batches: list[torch.Tensor], save: Callable[[], None] | None
) -> None:
    """Train on the epoch's batches after ``state.batch_no`` (those before were done before a restart)."""
    args, every = run.args, max(1, run.steps_per_epoch // 4)
    run.model.train()
    running, seen = 0.0, 0
    for batch_no, index in enumerate(epoch_batches, start=1):
        if batch_no <= state.batch_no:
            continue
        batch = run.tokenizer(
            [run.data.texts[i] for i in index.tolist()],
            padding=True,
            truncation=True,
            max_length=args.max_length,
            return_tensors="pt",
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = run.losses.total(run.model(batch), run.data, index)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        state.steps += 1
        if run.on_step is not None:
            run.on_step(state.steps, run.total)
        running, seen = running + float(loss.detach()), seen + 1
        if batch_no % every == 0 or batch_no == run.steps_per_epoch:
            run.report(
                f"epoch {state.epoch}/{args.epochs} step {batch_no}/{run.steps_per_epoch} "
                f"loss {running / seen:.3f} ({time.perf_counter() - run.started:.0f}s)"
            )
            running, seen = 0.0, 0
            if save is not None and batch_no < run.steps_per_epoch:
                state.batch_no = batch_no
                save()
    state.batch_no = 0


def _validate_epoch(
    run: _Run, state: LoopState, validate: Validate, best: dict[str, torch.Tensor] | None
) -> dict[str, torch.Tensor] | None:
    """Score the epoch, remember the best weights, decide on early stopping; return the best snapshot."""
    args, epoch = run.args, state.epoch
    metrics = validate()
    score = selection_score(metrics)
    state.history.append({"epoch": epoch, "score": round(score, 4), "metrics": metrics})
    run.report(f"epoch {epoch}/{args.epochs} validation mean macro-F1 {score:.4f}")
    if score > state.best_score:
        state.best_score, state.best_epoch = score, epoch
        return _snapshot(run.model) if epoch < args.epochs else None
    if args.patience and epoch - state.best_epoch >= args.patience:
        run.report(f"early stopping: no gain for {args.patience} epochs, keeping epoch {state.best_epoch}")
        state.stopped = True
    return best


def train_loop(
    model: MultiTaskModel,
    tokenizer: Any,
    data: Encoded,
    args: TrainingArgs,
    report: Progress,
    validate: Validate | None = None,
    on_step: StepHook | None = None,
    checkpoint: Checkpointer | None = None,
) -> LoopResult:
    """Train for up to ``args.epochs``; with ``validate``, keep the best epoch and stop after ``patience``.

    With ``checkpoint`` the state is saved every quarter epoch and at each epoch's end, and a
    matching checkpoint found at the start is resumed (the result equals an uninterrupted run's).
    """
    run = _setup(model, tokenizer, data, args, report, on_step)
    state, best = (checkpoint.resume(model, run.optimizer, run.scheduler, run.report)
                   if checkpoint is not None else (LoopState(), None))
    generator = torch.Generator().manual_seed(args.seed)
    if state.epoch_generator is not None:
        generator.set_state(state.epoch_generator)

    def save() -> None:
        if checkpoint is not None:
            checkpoint.save(model, run.optimizer, state, best)

    while state.epoch <= args.epochs and not state.stopped:
        state.epoch_generator = generator.get_state()
        _run_epoch(run, state, batches(run.lengths, args.batch_size, generator), save if checkpoint else None)
        if validate is not None:
            best = _validate_epoch(run, state, validate, best)
        state.epoch += 1
        state.epoch_generator = generator.get_state()
        save()
    result = LoopResult(steps=state.steps, best_epoch=state.best_epoch or args.epochs, history=state.history)
    if best is not None and state.best_epoch != len(state.history):
        model.load_state_dict(best)
        report(f"restored the weights of epoch {state.best_epoch} (best validation macro-F1)")
    fold(model.encoder)
    model.eval()
    return result
