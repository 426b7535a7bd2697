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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import torch

from finsentinel.errors import ConfigError, ModelError
from finsentinel.schema import SENTIMENTS
from nlp.model import SPEC_FILE, ModelSpec, MultiTaskModel, Pooling, save_model
from nlp.torch_backend import predict_proba
from nlp.vocab import extend_vocab
from training.args import TrainingArgs
from training.card import build_card, describe_rows, rows_sha256
from training.checkpoint import Checkpointer, check_checkpoint_dir, run_fingerprint
from training.data import is_partial
from training.encoder import base_fingerprint, load_base, resolve_base_model
from training.loop import Encoded, LoopResult, Progress, StepHook, encode_rows, row_events, train_loop
from training.metrics import evaluate, metrics_from_probabilities, metrics_line

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["Progress", "TrainResult", "train_multitask"]


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
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    """Validation metrics after each epoch."""

    @property
    def version(self) -> str:
        """Model name plus short weights hash, as recorded on scored items."""
        return self.spec.version


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


def check_out_dir(out_dir: Path) -> None:
    """Refuse to write a model over ``out_dir`` when it exists and is not a model directory (or empty)."""
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
    loop: LoopResult
    seconds: float
    threads: int


@dataclass(frozen=True)
class _Labels:
    topics: list[str]
    events: list[str]


def _fit(
    base_path: Path,
    data: Encoded,
    labels: _Labels,
    args: TrainingArgs,
    report: Progress,
    valid_rows: Sequence[Mapping[str, Any]],
    on_step: StepHook | None = None,
    checkpoint: Checkpointer | None = None,
) -> _Fitted:
    """Load the base, extend its vocabulary, train the heads; torch's thread count is restored after."""
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
        model = MultiTaskModel(
            encoder, len(labels.topics), len(SENTIMENTS), pooling, args.dropout, n_events=len(labels.events)
        )
        report(f"training on {len(data.texts)} rows, {args.epochs} epochs, {torch.get_num_threads()} threads")

        def validate() -> dict[str, Any]:
            return evaluate(
                model, tokenizer, valid_rows, labels.topics, max_length=args.max_length, events=labels.events
            )

        loop = train_loop(
            model, tokenizer, data, args, report, validate if valid_rows else None, on_step, checkpoint
        )
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous_threads)
    return _Fitted(model, tokenizer, added, loop, round(time.perf_counter() - started, 1), threads)


def write_atomically(out: Path, write: Callable[[Path], T]) -> T:
    """Run ``write`` into a fresh temporary directory beside ``out``, then rename it into place.

    An interrupted write never leaves a half-written directory at ``out``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        result = write(tmp)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


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
    on_step: StepHook | None = None,
    checkpoint_dir: str | Path | None = None,
) -> TrainResult:
    """Fine-tune ``base_model`` on both tasks and write the model directory ``out_dir`` atomically.

    ``progress`` receives lines such as ``epoch 2/4 step 30/48 loss 0.412 (41s)``; ``on_step`` is
    called after every optimiser step with (steps done, planned steps). With ``checkpoint_dir`` the
    run can be resumed after a crash by calling again with the same arguments (see
    :mod:`training.checkpoint`); the checkpoint is deleted once the model is written.
    ``extra_eval`` names further labelled sets to score after training (reported in the card
    beside the validation metrics); ``data_sources`` (files, hashes, notes) and ``card_extra`` go
    verbatim into the model card.
    Rows carrying ``events`` (a list of risk-event types) add the optional multi-label event head.
    Raises :class:`ConfigError` for bad rows or arguments, :class:`ModelError` for an unusable base.
    """
    if not isinstance(args, TrainingArgs):
        raise ConfigError(f"expected TrainingArgs, got {type(args).__name__}")
    out = Path(out_dir)
    check_out_dir(out)
    if checkpoint_dir is not None:
        check_checkpoint_dir(Path(checkpoint_dir), out)
    labels = _labels(rows_train)
    train_data = encode_rows(rows_train, labels.topics, labels.events, "train")
    evaluations = {"valid": rows_valid, **(extra_eval or {})}
    for split, rows in evaluations.items():
        encode_rows(rows, labels.topics, labels.events, split)  # fail before training, not after
    report = _reporter(progress)
    base_path = resolve_base_model(base_model)
    checkpoint = (
        Checkpointer(Path(checkpoint_dir), run_fingerprint(rows_sha256(rows_train), args.to_dict(), base_path))
        if checkpoint_dir is not None
        else None
    )
    ngram = _fit_ngram(rows_train, labels, args, report)  # first: minutes, and its errors come before hours of training
    fitted = _fit(base_path, train_data, labels, args, report, rows_valid, on_step, checkpoint)
    topics = labels.topics
    scores, network_only = _score(fitted, evaluations, labels, args, ngram)
    for k, m in scores.items():
        report(metrics_line("validation" if k == "valid" else k, m))
    metrics = scores.pop("valid")
    spec = ModelSpec(
        name=name,
        topics=tuple(topics),
        pooling=cast(Pooling, args.pooling),
        max_length=args.max_length,
        base_model=str(base_model),
        events=tuple(labels.events),
        ngram_weight=args.ngram_weight if ngram is not None else 0.0,
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
        "steps": fitted.loop.steps,
        "seconds": fitted.seconds,
        "threads": fitted.threads,
        "added_tokens": fitted.added,
        "best_epoch": fitted.loop.best_epoch,
        "history": [{"epoch": h["epoch"], "score": h["score"]} for h in fitted.loop.history],
    }
    card = build_card(
        name,
        base_info,
        data_info,
        args.to_dict(),
        training,
        metrics,
        topics,
        {"extra_evaluations": scores, **({"network_only_metrics": network_only} if ngram else {}),
         **(card_extra or {})},
    )
    final = write_atomically(
        out, lambda tmp: save_model(fitted.model, fitted.tokenizer, spec, tmp, card, ngram=ngram)
    )
    report(f"model written to {out} ({final.name}@{final.weights_sha256[:12]})")
    if checkpoint is not None:
        checkpoint.remove()
    return TrainResult(
        model_dir=out,
        spec=final,
        metrics=metrics,
        seconds=fitted.seconds,
        steps=fitted.loop.steps,
        added_tokens=fitted.added,
        extra_metrics=scores,
        best_epoch=fitted.loop.best_epoch,
        history=fitted.loop.history,
    )


def _fit_ngram(
    rows_train: Sequence[Mapping[str, Any]], labels: _Labels, args: TrainingArgs, report: Progress
) -> Any:
    """The n-gram half of the ensemble (None when ``args.ngram_weight`` is 0)."""
    if args.ngram_weight <= 0:
        return None
    from nlp.ngram import fit_ngram

    started = time.perf_counter()
    heads: dict[str, list[str]] = {"topic": list(labels.topics), "sentiment": list(SENTIMENTS)}
    if labels.events:
        heads["events"] = list(labels.events)
    # A linear n-gram model cannot learn from partial labels (neutral|positive): those rows lose the label.
    plain = [{k: v for k, v in r.items() if k != "label"} if is_partial(r.get("label")) else r for r in rows_train]
    rows = [r for r in plain if any(r.get(k) is not None for k in ("topic", "label", "events"))]
    ngram = fit_ngram(rows, heads, args.ngram_analysers, args.ngram_c, args.seed, balanced=args.class_weights)
    report(f"n-gram model ({args.ngram_analysers}) fitted in {time.perf_counter() - started:.0f}s, "
           f"weight {args.ngram_weight}")
    return ngram


def _score(
    fitted: _Fitted,
    evaluations: Mapping[str, Sequence[Mapping[str, Any]]],
    labels: _Labels,
    args: TrainingArgs,
    ngram: Any,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Metrics of the final model (network, averaged with the n-gram model if any) on every set,
    and of the network alone (empty without an n-gram model)."""
    scores: dict[str, dict[str, Any]] = {}
    network_only: dict[str, dict[str, Any]] = {}
    for name, rows in evaluations.items():
        if not rows:
            scores[name] = {}
            continue
        texts = [str(r["text"]) for r in rows]
        probs = list(predict_proba(fitted.model, fitted.tokenizer, texts, 64, args.max_length))
        if ngram is not None:
            network_only[name] = metrics_from_probabilities(rows, probs, labels.topics, labels.events)
            probs = average_with_ngram(probs, ngram.probabilities(texts), args.ngram_weight)
        scores[name] = metrics_from_probabilities(rows, probs, labels.topics, labels.events)
    return scores, network_only


def average_with_ngram(
    probs: Sequence[torch.Tensor], ngram: Mapping[str, Any], weight: float
) -> list[torch.Tensor]:
    """The network's probabilities averaged with the n-gram model's (:func:`nlp.ngram.average`)."""
    from nlp.ngram import average

    return average(probs, {h: torch.as_tensor(p, dtype=torch.float32) for h, p in ngram.items()}, weight)


def _labels(rows_train: Sequence[Mapping[str, Any]]) -> _Labels:
    """Topic and event label sets of the training rows; both topic and sentiment examples are required."""
    topics = sorted({str(r["topic"]) for r in rows_train if r.get("topic") is not None})
    if not topics or not any(r.get("label") is not None for r in rows_train):
        raise ConfigError(
            "training rows need both topic and sentiment ('label') examples (one file of each is "
            f"enough); got {len(topics)} topics in {len(rows_train)} rows"
        )
    events: set[str] = set()
    for n, row in enumerate(rows_train):
        try:
            events.update(row_events(row) or ())
        except ConfigError as exc:
            raise ConfigError(f"train row {n}: {exc}") from exc
    return _Labels(topics, sorted(events))


def _reporter(progress: Progress | None) -> Progress:
    def report(message: str) -> None:
        if progress is not None:  # the caller decides where progress goes (the CLI logs it)
            progress(message)
        else:
            log.info("%s", message)

    return report
