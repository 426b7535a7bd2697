"""PyTorch backend: :class:`TorchRunner` (the :class:`nlp.base.Runner` the inference engine uses),
:func:`predict_proba` (training and evaluation) and :class:`TorchClassifier` (the engine on PyTorch
with the first release's constructor)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from finsentinel.errors import ModelError
from nlp.engine import InferenceEngine
from nlp.model import ENCODER_INPUTS, MultiTaskModel, load_model

log = logging.getLogger(__name__)


class TorchRunner:
    """Runs a model directory's network with PyTorch (fp32, inference mode)."""

    name = "torch"
    input_names = ENCODER_INPUTS

    def __init__(self, model_dir: Path, threads: int = 0) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.loaded = load_model(model_dir)

    def run(self, batch: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """Head logits for one padded batch."""
        inputs = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}
        try:
            with torch.inference_mode():
                return tuple(t.float().numpy() for t in self.loaded.model(inputs))
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ModelError(
                f"model {self.loaded.version} failed on a batch of shape {batch['input_ids'].shape}: {exc}"
            ) from exc


def predict_proba(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    batch_size: int = 32,
    max_length: int = 64,
) -> tuple[torch.Tensor, ...]:
    """Topic and sentiment probabilities (softmax) and, with an event head, event probabilities
    (sigmoid), one row per text in input order.

    Texts are batched in order of length so that padding stays short; runs in inference mode.
    Used by training and evaluation; serving goes through :class:`nlp.engine.InferenceEngine`.
    """
    heads = [model.topic_head, model.sentiment_head] + ([model.event_head] if model.event_head else [])
    probs = [torch.empty((len(texts), head.out_features)) for head in heads]
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
                logits = model(batch)
                index = torch.tensor(chunk)
                for n, head_logits in enumerate(logits):
                    values = head_logits.float()
                    probs[n][index] = values.sigmoid() if n == 2 else values.softmax(-1)
    finally:
        model.train(was_training)
    return tuple(probs)


class TorchClassifier(InferenceEngine):
    """The inference engine on PyTorch, with the first release's constructor (a drop-in replacement).

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
        super().__init__(model_dir, "torch", max_batch=batch_size, max_length=max_length, threads=threads)
