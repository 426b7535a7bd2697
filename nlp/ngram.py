"""The n-gram half of the ensemble: TF-IDF n-grams + multinomial logistic regression per head.

A linear n-gram model is strong on exactly what a small transformer fine-tuned on little data
misses (rare topics, tickers, fixed phrases; see ``../shared/notes/baselines.md``), so a model
directory may carry one beside the network: its class probabilities are averaged with the
network's, ``p = (1 - w) * p_network + w * p_ngram`` with ``w`` = ``ngram_weight`` in
``finsentinel.json``. The risk-event head, where there is one, gets one binary logistic regression
per event type (sigmoid probabilities, averaged the same way): event types are mostly named by
fixed phrases (减持, 违规, 跑路), where char n-grams are strong (FinESE eval micro-F1: char 1-3-grams
alone 0.857, the fine-tuned multilingual-e5-small network 0.843, the two averaged 0.890).

Stored without pickle: ``ngram.json`` (analyser settings and each vectoriser's n-gram vocabulary in
column order) and ``ngram.safetensors`` (idf vectors, coefficients and intercepts). At load time
the scikit-learn vectorisers are rebuilt from the fixed vocabulary and idf, so transform is exactly
the fitted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from safetensors.numpy import load_file, save_file

from finsentinel.errors import ModelError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NGRAM_JSON = "ngram.json"
NGRAM_WEIGHTS = "ngram.safetensors"
HEADS = ("topic", "sentiment", "events")
MULTILABEL = frozenset({"events"})
"""Heads whose labels are independent yes/no decisions (sigmoid), not one class of several (softmax)."""

ANALYSERS: dict[str, list[dict[str, Any]]] = {
    # word 1-2 + char_wb 2-5: the English baseline of baselines.md
    "word+char": [
        {"analyzer": "word", "ngram_range": [1, 2], "lowercase": True, "token_pattern": r"(?u)\$?\b\w+\b"},
        {"analyzer": "char_wb", "ngram_range": [2, 5], "lowercase": True},
    ],
    # word 1-2 alone: about 25 µs per tweet to featurise against 160 µs with char_wb 2-5 added, and
    # as good beside the English network (TFNS valid, weight 0.5: sentiment 0.882 vs 0.877 accuracy)
    "word": [
        {"analyzer": "word", "ngram_range": [1, 2], "lowercase": True, "token_pattern": r"(?u)\$?\b\w+\b"},
    ],
    # char 1-3: the Chinese baseline (no word segmentation needed)
    "char": [{"analyzer": "char", "ngram_range": [1, 3], "lowercase": True}],
}


P = TypeVar("P", np.ndarray, "torch.Tensor")


def ngram_digest(model_dir: Path) -> str:
    """SHA-256 over a directory's n-gram files: equal digests mean the same n-gram half."""
    digest = hashlib.sha256()
    for name in (NGRAM_JSON, NGRAM_WEIGHTS):
        digest.update((model_dir / name).read_bytes())
    return digest.hexdigest()


def average(probs: Sequence[P], ngram: Mapping[str, P], weight: float) -> list[P]:
    """``(1 - weight) * network + weight * n-gram`` for every head (in ``HEADS`` order) both have.

    The one averaging rule of the ensemble, for numpy arrays (the engine) and tensors (training).
    """
    out = list(probs)
    for i, head in enumerate(HEADS[: len(out)]):
        if head in ngram:
            out[i] = (1 - weight) * out[i] + weight * ngram[head]
    return out


def _vectorizer(config: Mapping[str, Any], vocabulary: Sequence[str] | None = None, min_df: int = 2) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    kwargs = {k: (tuple(v) if k == "ngram_range" else v) for k, v in config.items()}
    if vocabulary is not None:
        return TfidfVectorizer(vocabulary={t: i for i, t in enumerate(vocabulary)}, sublinear_tf=True,
                               dtype=np.float32, **kwargs)
    return TfidfVectorizer(min_df=min_df, sublinear_tf=True, dtype=np.float32, **kwargs)


@dataclass
class NgramModel:
    """Fitted vectorisers and per-head linear models."""

    analysers: list[dict[str, Any]]
    vectorizers: list[Any]
    labels: dict[str, list[str]]
    coef: dict[str, np.ndarray]
    intercept: dict[str, np.ndarray]

    def features(self, texts: Sequence[str]) -> Any:
        """The TF-IDF feature matrix (sparse, one row per text)."""
        from scipy.sparse import hstack

        return hstack([v.transform(texts) for v in self.vectorizers]).tocsr()

    def probabilities(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-head probabilities, rows in input order: softmax of the linear scores, or for the event
        head a sigmoid per type."""
        x = self.features(texts)
        out = {}
        for head in self.coef:
            scores = np.asarray(x @ self.coef[head].T) + self.intercept[head]
            if head in MULTILABEL:
                out[head] = 1.0 / (1.0 + np.exp(-np.clip(scores, -60.0, 60.0)))
                continue
            scores -= scores.max(axis=1, keepdims=True)
            exp = np.exp(scores)
            out[head] = exp / exp.sum(axis=1, keepdims=True)
        return out

    def save(self, model_dir: Path) -> None:
        """Write ``ngram.json`` and ``ngram.safetensors``."""
        meta = {
            "analysers": self.analysers,
            "vocabularies": [list(v.get_feature_names_out()) for v in self.vectorizers],
            "labels": self.labels,
        }
        (model_dir / NGRAM_JSON).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        tensors = {f"idf.{i}": v.idf_.astype(np.float32) for i, v in enumerate(self.vectorizers)}
        for head in self.coef:
            tensors[f"coef.{head}"] = np.ascontiguousarray(self.coef[head], dtype=np.float32)
            tensors[f"intercept.{head}"] = self.intercept[head].astype(np.float32)
        save_file(tensors, str(model_dir / NGRAM_WEIGHTS))
        (model_dir / NGRAM_WEIGHTS).chmod(0o644)

    @classmethod
    def load(cls, model_dir: Path) -> NgramModel:
        """Read the n-gram model of a directory; :class:`ModelError` when it is missing or inconsistent."""
        try:
            meta = json.loads((model_dir / NGRAM_JSON).read_text(encoding="utf-8"))
            tensors = load_file(str(model_dir / NGRAM_WEIGHTS))
        except (OSError, ValueError) as exc:
            raise ModelError(f"the n-gram model in {model_dir} is missing or unreadable ({exc})") from exc
        vectorizers = []
        for i, (config, vocab) in enumerate(zip(meta["analysers"], meta["vocabularies"], strict=True)):
            vectorizer = _vectorizer(config, vocab)
            vectorizer.idf_ = tensors[f"idf.{i}"]
            vectorizers.append(vectorizer)
        heads = [h for h in HEADS if f"coef.{h}" in tensors]
        width = sum(len(v) for v in meta["vocabularies"])
        if any(tensors[f"coef.{h}"].shape != (len(meta["labels"][h]), width) for h in heads):
            raise ModelError(f"the n-gram weights in {model_dir} do not fit its vocabulary and labels")
        return cls(meta["analysers"], vectorizers, meta["labels"],
                   {h: tensors[f"coef.{h}"] for h in heads}, {h: tensors[f"intercept.{h}"] for h in heads})


def fit_ngram(
    rows: Sequence[Mapping[str, Any]],
    labels: Mapping[str, Sequence[str]],
    analysers: str = "word+char",
    c: float = 10.0,
    seed: int = 0,
    balanced: bool = False,
) -> NgramModel:
    """Fit the vectorisers on all texts and one logistic regression per head on the rows with its label.

    ``labels`` maps ``topic``/``sentiment`` (and optionally ``events``) to the network's label order
    (the probability columns must line up for averaging). Event rows carry ``events``, a list of
    types; each type gets a binary regression. ``balanced`` weights classes by inverse frequency
    (single-label heads only; the per-type event regressions are unweighted).
    """
    if analysers not in ANALYSERS:
        raise ModelError(f"expected n-gram analysers one of {sorted(ANALYSERS)}, got {analysers!r}")
    configs = ANALYSERS[analysers]
    texts = [str(r["text"]) for r in rows]
    vectorizers = [_vectorizer(config).fit(texts) for config in configs]
    model = NgramModel(configs, vectorizers, {h: list(v) for h, v in labels.items()}, {}, {})
    x = model.features(texts)
    field = {"topic": "topic", "sentiment": "label", "events": "events"}
    for head, order in labels.items():
        index = [i for i, r in enumerate(rows) if r.get(field[head]) is not None]
        values = [rows[i][field[head]] for i in index]
        if head not in MULTILABEL and len(set(map(str, values))) < 2:
            raise ModelError(
                f"the n-gram {head} head needs rows of at least two classes, got {sorted(set(map(str, values)))} "
                f"in {len(index)} rows; add labelled files (partial sentiment labels do not count)"
            )
        if head in MULTILABEL:
            model.coef[head], model.intercept[head] = _fit_multilabel(x[index], values, list(order), c, seed)
        else:
            model.coef[head], model.intercept[head] = _fit_single(x[index], values, list(order), c, seed, balanced)
        log.info("n-gram %s head: %d rows, %d features", head, len(index), x.shape[1])
    return model


def _fit_single(
    x: Any, values: Sequence[Any], order: list[str], c: float, seed: int, balanced: bool
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    y = [order.index(str(v)) for v in values]
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight="balanced" if balanced else None)
    clf.fit(x, y)
    coef = np.zeros((len(order), x.shape[1]), dtype=np.float32)
    intercept = np.full(len(order), -1e4, dtype=np.float32)  # a class absent from training: never chosen
    coef[clf.classes_] = clf.coef_ if len(clf.classes_) > 2 else np.vstack([-clf.coef_, clf.coef_]) / 2
    intercept[clf.classes_] = clf.intercept_ if len(clf.classes_) > 2 else [-clf.intercept_[0] / 2,
                                                                               clf.intercept_[0] / 2]
    return coef, intercept


def _fit_multilabel(
    x: Any, values: Sequence[Sequence[str]], order: list[str], c: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    y = np.array([[name in types for name in order] for types in values], dtype=np.int8).reshape(-1, len(order))
    coef = np.zeros((len(order), x.shape[1]), dtype=np.float32)
    intercept = np.full(len(order), -1e4, dtype=np.float32)  # a type never seen: never chosen
    for j in range(len(order)):
        if 0 < y[:, j].sum() < len(values):
            clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y[:, j])
            coef[j], intercept[j] = clf.coef_[0], clf.intercept_[0]
        elif len(values) and y[:, j].all():
            intercept[j] = 1e4  # every row has it
    return coef, intercept
