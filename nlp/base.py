"""The classifier interface: texts in, one topic + sentiment :class:`Prediction` per text out.

Every backend (today: :mod:`nlp.torch_backend`) implements :class:`Classifier`; the NLP stage
(:mod:`nlp.stage`) depends on this Protocol only, so its logic is tested without a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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

    @classmethod
    def from_probabilities(
        cls, topic_scores: Mapping[str, float], sentiment_scores: Mapping[str, float]
    ) -> Prediction:
        """Build from two probability maps; the argmax labels and the signed score are derived."""
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
        )


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
