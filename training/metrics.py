"""Validation metrics: accuracy and macro-F1 per head (and per language).

Hand-written rather than taken from scikit-learn: two formulas do not justify a heavy dependency
in the runtime image, and the definitions below are the standard ones (macro-F1 = unweighted mean of
per-class F1 over the classes present in either truth or prediction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from finsentinel.schema import SENTIMENTS
from nlp.model import MultiTaskModel
from nlp.torch_backend import predict_proba


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """``{"n", "accuracy", "macro_f1", "f1": {label: f1}}``; empty input gives n=0 and no scores."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"expected as many predictions as labels, got {len(y_pred)} for {len(y_true)}")
    if not y_true:
        return {"n": 0}
    labels = sorted(set(y_true) | set(y_pred))
    f1: dict[str, float] = {}
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(y_true, y_pred, strict=True))
        predicted = sum(p == label for p in y_pred)
        actual = sum(t == label for t in y_true)
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1[label] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)
    return {
        "n": len(y_true),
        "accuracy": round(accuracy, 4),
        "macro_f1": round(sum(f1.values()) / len(f1), 4),
        "f1": {k: round(v, 4) for k, v in f1.items()},
    }


def head_metrics(y_true: Sequence[str | None], y_pred: Sequence[str], langs: Sequence[str]) -> dict[str, Any]:
    """Metrics over the rows that carry a label for this head, overall and per language."""
    kept = [(t, p, lang) for t, p, lang in zip(y_true, y_pred, langs, strict=True) if t is not None]
    result = classification_metrics([t for t, _, _ in kept], [p for _, p, _ in kept])
    by_lang = {}
    for lang in sorted({lang for _, _, lang in kept}):
        rows = [(t, p) for t, p, row_lang in kept if row_lang == lang]
        scores = classification_metrics([t for t, _ in rows], [p for _, p in rows])
        by_lang[lang] = {k: scores[k] for k in ("n", "accuracy", "macro_f1")}
    if by_lang:
        result["by_lang"] = by_lang
    return result


def evaluate(
    model: MultiTaskModel,
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    topics: Sequence[str],
    batch_size: int = 64,
    max_length: int = 64,
) -> dict[str, Any]:
    """Accuracy and macro-F1 of both heads on labelled rows (overall and per language)."""
    if not rows:
        return {}
    texts = [str(r["text"]) for r in rows]
    topic_probs, sentiment_probs = predict_proba(model, tokenizer, texts, batch_size, max_length)
    langs = [str(r.get("lang", "?")) for r in rows]
    return {
        "sentiment": head_metrics(
            [r.get("label") for r in rows],
            [SENTIMENTS[i] for i in sentiment_probs.argmax(-1).tolist()],
            langs,
        ),
        "topic": head_metrics(
            [r.get("topic") for r in rows], [topics[i] for i in topic_probs.argmax(-1).tolist()], langs
        ),
    }


def metrics_line(name: str, metrics: Mapping[str, Any]) -> str:
    """One log line: accuracy and macro-F1 of each head."""
    if not metrics:
        return f"{name}: no rows"
    parts = [
        f"{head} accuracy {m['accuracy']:.3f} macro-F1 {m['macro_f1']:.3f}"
        for head, m in metrics.items()
        if m.get("n")
    ]
    return f"{name}: " + "; ".join(parts)
