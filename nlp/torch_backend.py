"""PyTorch backend of :class:`nlp.base.Classifier`: runs a model directory written by :mod:`nlp.model`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from finsentinel.errors import ModelError
from nlp.base import Prediction
from nlp.model import LoadedModel, MultiTaskModel, load_model

log = logging.getLogger(__name__)


def predict_proba(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    batch_size: int = 32,
    max_length: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Topic and sentiment probabilities, one row per text in input order.

    Texts are batched in order of length so that padding stays short; runs in inference mode.
    """
    n_topics = model.topic_head.out_features
    n_sentiments = model.sentiment_head.out_features
    topic_probs = torch.empty((len(texts), n_topics))
    sentiment_probs = torch.empty((len(texts), n_sentiments))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = tokenizer(
                    [texts[i] for i in chunk],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                topic_logits, sentiment_logits = model(batch)
                index = torch.tensor(chunk)
                topic_probs[index] = topic_logits.float().softmax(-1)
                sentiment_probs[index] = sentiment_logits.float().softmax(-1)
    finally:
        model.train(was_training)
    return topic_probs, sentiment_probs


class TorchClassifier:
    """Topic + sentiment classifier over a FinSentinel model directory.

    The constructor does no I/O; the model is read on the first :meth:`classify` (or an explicit
    :meth:`load`, which a worker calls at start-up to fail fast on a missing or corrupt model).
    ``threads`` > 0 sets torch's process-wide CPU thread count when the model loads.
    """

    def __init__(
        self, model_dir: str | Path, batch_size: int = 32, max_length: int = 64, threads: int = 0
    ) -> None:
        if batch_size < 1 or max_length < 8 or threads < 0:
            raise ModelError(
                f"expected batch_size >= 1, max_length >= 8, threads >= 0; got "
                f"{batch_size}, {max_length}, {threads}"
            )
        self.model_dir = Path(model_dir)
        self.batch_size, self.max_length, self.threads = batch_size, max_length, threads
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()

    def load(self) -> LoadedModel:
        """Read the model (once); raise :class:`ModelError` with one clear line if it cannot be used."""
        with self._lock:
            if self._loaded is None:
                if self.threads:
                    torch.set_num_threads(self.threads)
                self._loaded = load_model(self.model_dir)
                log.info(
                    "classifier %s ready (batch %d, max_length %d)",
                    self._loaded.version,
                    self.batch_size,
                    self.max_length,
                )
            return self._loaded

    @property
    def version(self) -> str:
        """Model name and short weights hash, e.g. ``finsentinel-seed@3f2a9c1b7d0e``."""
        return self.load().version

    @property
    def topics(self) -> tuple[str, ...]:
        """The topic labels of the loaded model."""
        return self.load().spec.topics

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        """One :class:`Prediction` per text, in input order."""
        if not texts:
            return []
        loaded = self.load()
        try:
            topic_probs, sentiment_probs = predict_proba(
                loaded.model, loaded.tokenizer, texts, self.batch_size, self.max_length
            )
        except (RuntimeError, ValueError) as exc:
            raise ModelError(
                f"model {loaded.version} failed on a batch of {len(texts)} texts: {exc}"
            ) from exc
        topics, sentiments = loaded.spec.topics, loaded.spec.sentiments
        return [
            Prediction.from_probabilities(
                {t: round(float(p), 6) for t, p in zip(topics, t_row.tolist(), strict=True)},
                {s: round(float(p), 6) for s, p in zip(sentiments, s_row.tolist(), strict=True)},
            )
            for t_row, s_row in zip(topic_probs, sentiment_probs, strict=True)
        ]
