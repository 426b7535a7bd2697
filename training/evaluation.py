"""`finsentinel evaluate`: one task's scores for a model directory on labelled rows, on any backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from finsentinel.errors import ConfigError
from finsentinel.settings import NlpSettings
from nlp.base import decide_events
from nlp.ensemble import EnsembleEngine, open_engine
from training.data import is_partial
from training.metrics import classification_metrics, multilabel_metrics, partial_metrics

FIELDS = {"sentiment": "label", "topic": "topic", "events": "events"}


def evaluate_model(
    model_dir: str | Path | Sequence[str | Path],
    rows: Sequence[Mapping[str, Any]],
    task: str,
    backend: str = "torch",
    settings: NlpSettings | None = None,
) -> dict[str, Any]:
    """Accuracy, macro/weighted F1, per-class scores and confusion matrix (micro/macro F1 for events).

    Rows without a label for ``task`` are left out; :class:`ConfigError` when none is left. Rows
    with a partial sentiment label (``neutral|positive``) are scored apart, under ``partial``: the
    share of them whose predicted sentiment is one of the allowed ones. Several model directories
    (with the same label lists), or an ensemble directory, are scored as one ensemble: the mean of
    their probabilities (see :mod:`nlp.ensemble`).
    """
    if task not in FIELDS:
        raise ConfigError(f"expected task sentiment, topic or events, got {task!r}")
    partial = [r for r in rows if task == "sentiment" and is_partial(r.get("label"))]
    labelled = [r for r in rows if r.get(FIELDS[task]) is not None and not (task == "sentiment" and is_partial(r["label"]))]
    if not labelled and not partial:
        raise ConfigError(f"no rows carry a '{FIELDS[task]}' label for task {task}")
    nlp = settings or NlpSettings()
    engine = open_engine(model_dir, backend, max_batch=nlp.batch_size, threads=nlp.threads)  # type: ignore[arg-type]
    spec, version = engine.spec, engine.version
    if task == "events" and not spec.events:
        raise ConfigError(f"model {version} has no risk-event head; train it with --events FILE")
    texts = [str(r["text"]) for r in [*labelled, *partial]]
    probs = engine.probabilities(texts)
    if task == "events":
        predicted = [decide_events(dict(zip(spec.events, p.tolist(), strict=True))) for p in probs[2]]
        metrics = multilabel_metrics([list(r["events"]) for r in labelled], predicted, spec.events)
    else:
        labels = spec.sentiments if task == "sentiment" else spec.topics
        head = probs[1] if task == "sentiment" else probs[0]
        predicted_labels = [labels[i] for i in head.argmax(-1).tolist()]
        metrics = classification_metrics(
            [str(r[FIELDS[task]]) for r in labelled], predicted_labels[: len(labelled)], labels
        )
        unknown = sorted({str(r[FIELDS[task]]) for r in labelled} - set(labels))
        if unknown:
            metrics["unknown_labels"] = unknown  # labels the model cannot predict: always counted wrong
        if partial:
            metrics["partial"] = partial_metrics([str(r["label"]) for r in partial], predicted_labels[len(labelled):])
    members = {"members": engine.member_versions} if isinstance(engine, EnsembleEngine) else {}
    return {"task": task, "model": version, "backend": engine.runner_name, **members, **metrics}


def format_report(report: Mapping[str, Any]) -> str:
    """A short human-readable table of an :func:`evaluate_model` report."""
    lines = [f"{report['task']} on {report['n']} rows, model {report['model']} ({report['backend']})"]
    if "accuracy" in report:
        lines.append(
            f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  "
            f"weighted-F1 {report['weighted_f1']:.4f}"
        )
    elif "micro_f1" in report:
        lines.append(f"micro-F1 {report['micro_f1']:.4f}  macro-F1 {report['macro_f1']:.4f}")
    if report.get("per_class"):
        lines.append(f"{'class':<32} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
    for label, m in report.get("per_class", {}).items():
        lines.append(
            f"{label:<32} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>7.3f} {m['support']:>8}"
        )
    for label, m in report.get("partial", {}).get("per_set", {}).items():
        lines.append(f"partial label {label}: {m['accuracy']:.4f} of {m['n']} rows predicted inside the set")
    return "\n".join(lines) + "\n"
