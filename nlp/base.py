"""The classifier interface: texts in, one topic + sentiment :class:`Prediction` per text out.

Every backend (today: :mod:`nlp.torch_backend`) implements :class:`Classifier`; the NLP stage
(:mod:`nlp.stage`) depends on this Protocol only, so its logic is tested without a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from finsentinel.schema import SENTIMENTS, Sentiment


@dataclass(frozen=True, slots=True)
class Prediction:
    """Topic and sentiment of one text, with the probability of every label."""

    topic: str
    topic_scores: Mapping[str, float]
    sentiment: Sentiment
    sentiment_scores: Mapping[str, float]
    sentiment_score: float
    """P(positive) - P(negative), in [-1, 1]."""
    event_scores: Mapping[str, float] = field(default_factory=dict)
    """P(type) per risk-event type (models with an event head only; independent sigmoids)."""
    events: tuple[str, ...] = ()
    """The risk-event types decided from ``event_scores`` (see :func:`decide_events`)."""

    @classmethod
    def from_probabilities(
        cls,
        topic_scores: Mapping[str, float],
        sentiment_scores: Mapping[str, float],
        event_scores: Mapping[str, float] | None = None,
    ) -> Prediction:
        """Build from the probability maps; the argmax labels, events and the signed score are derived."""
        missing = [s for s in SENTIMENTS if s not in sentiment_scores]
        if missing or not topic_scores:
            raise ValueError(
                f"expected probabilities for {SENTIMENTS} and at least one topic, got "
                f"sentiments {sorted(sentiment_scores)} and topics {sorted(topic_scores)}"
            )
        sentiment = max(SENTIMENTS, key=lambda s: sentiment_scores[s])
        signed = sentiment_scores["positive"] - sentiment_scores["negative"]
        return cls(
            topic=max(topic_scores, key=lambda t: topic_scores[t]),
            topic_scores=dict(topic_scores),
            sentiment=sentiment,
            sentiment_scores=dict(sentiment_scores),
            sentiment_score=min(1.0, max(-1.0, signed)),
            event_scores=dict(event_scores or {}),
            events=tuple(decide_events(event_scores)) if event_scores else (),
        )


EVENT_THRESHOLD = 0.5
NO_EVENT = "其他"
"""FinESE's 'other / no risk event' type: never reported as a risk event."""


def decide_events(event_scores: Mapping[str, float], threshold: float = EVENT_THRESHOLD) -> list[str]:
    """Event types with probability >= ``threshold``, most probable first; the single most probable
    type when none reaches it (every labelled row has at least one type, 'other' included)."""
    if not event_scores:
        return []
    ranked = sorted(event_scores, key=lambda e: -event_scores[e])
    chosen = [e for e in ranked if event_scores[e] >= threshold]
    return chosen or ranked[:1]


@runtime_checkable
class Runner(Protocol):
    """Runs the network of a model directory on one padded, tokenised batch (PyTorch or ONNX Runtime).

    ``batch`` holds int64 arrays ``input_ids``, ``attention_mask`` and ``token_type_ids`` of shape
    (batch, length); the result is the logits of each head in the order topic, sentiment[, events].
    """

    @property
    def name(self) -> str:
        """The backend, e.g. ``torch`` or ``onnx-int8``."""
        ...

    def run(self, batch: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """Head logits for the batch; raise ModelError when the backend fails."""
        ...


@runtime_checkable
class Classifier(Protocol):
    """Assigns a topic and a sentiment to texts in any supported language (en, zh)."""

    @property
    def version(self) -> str:
        """Model name and a short hash of its weights, recorded on every scored item."""
        ...

    @property
    def topics(self) -> tuple[str, ...]:
        """The topic labels this classifier can assign."""
        ...

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        """One prediction per text, in input order; raise ModelError when the model cannot run."""
        ...
