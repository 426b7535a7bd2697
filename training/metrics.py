"""Evaluation metrics: accuracy, macro/weighted F1, per-class scores and confusion matrices per head
(and per language), micro/macro F1 for the multi-label risk-event head.

Hand-written rather than taken from scikit-learn: a few formulas do not justify a heavy dependency
in the runtime image, and the definitions below are the standard ones (macro-F1 = unweighted mean of
per-class F1 over the classes present in either truth or prediction; weighted-F1 = mean weighted by
each class's support), identical to ``sklearn.metrics.f1_score`` with ``average='macro'/'weighted'``
and ``labels`` = the union of true and predicted labels (checked in the tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from finsentinel.schema import SENTIMENTS
from nlp.base import decide_events
from nlp.model import MultiTaskModel
from nlp.torch_backend import predict_proba
from training.data import is_partial, sentiment_choices


def classification_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Single-label scores; empty input gives ``{"n": 0}``.

    Keys: ``n``, ``accuracy``, ``macro_f1``, ``weighted_f1``, ``f1`` ({label: f1}), ``per_class``
    ({label: precision, recall, f1, support}), ``labels`` (the order of ``confusion``) and
    ``confusion`` (rows: true label, columns: predicted label). ``labels`` fixes the order and
    includes classes absent from both lists in the confusion matrix (not in the averages).
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"expected as many predictions as labels, got {len(y_pred)} for {len(y_true)}")
    if not y_true:
        return {"n": 0}
    present = set(y_true) | set(y_pred)
    order = list(labels or []) + sorted(present - set(labels or []))
    position = {label: i for i, label in enumerate(order)}
    confusion = [[0] * len(order) for _ in order]
    for t, p in zip(y_true, y_pred, strict=True):
        confusion[position[t]][position[p]] += 1
    per_class: dict[str, dict[str, float | int]] = {}
    for label in order:
        i = position[label]
        tp, predicted = confusion[i][i], sum(row[i] for row in confusion)
        support = sum(confusion[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    scored = [label for label in order if label in present]
    accuracy = sum(confusion[i][i] for i in range(len(order))) / len(y_true)
    macro = sum(float(per_class[label]["f1"]) for label in scored) / len(scored)
    weighted = sum(float(per_class[label]["f1"]) * int(per_class[label]["support"]) for label in scored)
    return {
        "n": len(y_true),
        "accuracy": round(accuracy, 4),
        "macro_f1": round(macro, 4),
        "weighted_f1": round(weighted / len(y_true), 4),
        "f1": {label: round(float(per_class[label]["f1"]), 4) for label in scored},
        "per_class": {
            label: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()}
            for label, scores in per_class.items()
        },
        "labels": order,
        "confusion": confusion,
    }


def multilabel_metrics(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], labels: Sequence[str]
) -> dict[str, Any]:
    """Micro/macro F1 and exact-match ratio of label sets; per-class precision/recall/F1/support.

    True labels missing from ``labels`` (types the model cannot predict) are scored too: always missed.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"expected as many predictions as labels, got {len(y_pred)} for {len(y_true)}")
    if not y_true:
        return {"n": 0}
    labels = [*labels, *sorted({label for t in y_true for label in t} - set(labels))]
    per_class: dict[str, dict[str, float | int]] = {}
    total_tp = total_fp = total_fn = 0
    for label in labels:
        tp = sum(label in t and label in p for t, p in zip(y_true, y_pred, strict=True))
        fp = sum(label not in t and label in p for t, p in zip(y_true, y_pred, strict=True))
        fn = sum(label in t and label not in p for t, p in zip(y_true, y_pred, strict=True))
        total_tp, total_fp, total_fn = total_tp + tp, total_fp + fp, total_fn + fn
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        per_class[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                            "support": tp + fn}
    active = [label for label in labels if int(per_class[label]["support"]) or float(per_class[label]["f1"])
              or any(label in p for p in y_pred)]
    micro = 2 * total_tp / (2 * total_tp + total_fp + total_fn) if total_tp + total_fp + total_fn else 0.0
    exact = sum(set(t) == set(p) for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)
    return {
        "n": len(y_true),
        "micro_f1": round(micro, 4),
        "macro_f1": round(sum(float(per_class[k]["f1"]) for k in active) / max(1, len(active)), 4),
        "exact_match": round(exact, 4),
        "per_class": per_class,
    }


def head_metrics(
    y_true: Sequence[str | None], y_pred: Sequence[str], langs: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Metrics over the rows that carry a label for this head, overall and per language."""
    kept = [(t, p, lang) for t, p, lang in zip(y_true, y_pred, langs, strict=True) if t is not None]
    result = classification_metrics([t for t, _, _ in kept], [p for _, p, _ in kept], labels)
    by_lang = {}
    for lang in sorted({lang for _, _, lang in kept}):
        rows = [(t, p) for t, p, row_lang in kept if row_lang == lang]
        scores = classification_metrics([t for t, _ in rows], [p for _, p in rows])
        by_lang[lang] = {k: scores[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1")}
    if by_lang:
        result["by_lang"] = by_lang
    return result


def partial_metrics(allowed: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """For partial labels: how many rows, and the share predicted inside the allowed set (per set too)."""
    hits = [p in (sentiment_choices(a) or ()) for a, p in zip(allowed, predicted, strict=True)]
    per_set = {}
    for label in sorted(set(allowed)):
        mine = [h for a, h in zip(allowed, hits, strict=True) if a == label]
        per_set[label] = {"n": len(mine), "accuracy": round(sum(mine) / len(mine), 4)}
    return {"n": len(hits), "accuracy": round(sum(hits) / len(hits), 4) if hits else 0.0, "per_set": per_set}


def metrics_from_probabilities(
    rows: Sequence[Mapping[str, Any]],
    probs: Sequence[torch.Tensor],
    topics: Sequence[str],
    events: Sequence[str] = (),
) -> dict[str, Any]:
    """Scores of every head from its probabilities (rows in the same order as ``probs``' rows)."""
    langs = [str(r.get("lang", "?")) for r in rows]
    out: dict[str, Any] = {
        "sentiment": head_metrics(
            [None if is_partial(r.get("label")) else r.get("label") for r in rows], [SENTIMENTS[i] for i in probs[1].argmax(-1).tolist()], langs,
            SENTIMENTS,
        ),
        "topic": head_metrics(
            [r.get("topic") for r in rows], [topics[i] for i in probs[0].argmax(-1).tolist()], langs, topics
        ),
    }
    if events and len(probs) > 2:
        labelled = [i for i, r in enumerate(rows) if r.get("events") is not None]
        predicted = [decide_events(dict(zip(events, probs[2][i].tolist(), strict=True))) for i in labelled]
        out["events"] = multilabel_metrics([list(rows[i]["events"]) for i in labelled], predicted, events)
    return out


def evaluate(
    model: MultiTaskModel,
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    topics: Sequence[str],
    batch_size: int = 64,
    max_length: int = 64,
    events: Sequence[str] = (),
) -> dict[str, Any]:
    """Scores of every head on labelled rows (overall and per language)."""
    if not rows:
        return {}
    probs = predict_proba(model, tokenizer, [str(r["text"]) for r in rows], batch_size, max_length)
    return metrics_from_probabilities(rows, probs, topics, events)


def metrics_line(name: str, metrics: Mapping[str, Any]) -> str:
    """One log line: accuracy and macro-F1 of each head (micro/macro-F1 for events)."""
    if not metrics:
        return f"{name}: no rows"
    parts = []
    for head, m in metrics.items():
        if not m.get("n"):
            continue
        if "accuracy" in m:
            parts.append(f"{head} accuracy {m['accuracy']:.3f} macro-F1 {m['macro_f1']:.3f}")
        else:
            parts.append(f"{head} micro-F1 {m['micro_f1']:.3f} macro-F1 {m['macro_f1']:.3f}")
    return f"{name}: " + "; ".join(parts)
