"""Train a tiny model, load it through TorchClassifier, classify: the production inference path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from finsentinel.schema import SENTIMENTS
from nlp.base import Classifier, Prediction
from nlp.torch_backend import TorchClassifier
from tests.tiny_model import make_tiny_model_dir

TOPICS = ("Macro", "Earnings", "Personnel Change", "Analyst Update")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> TorchClassifier:
    path = make_tiny_model_dir(tmp_path_factory.mktemp("m") / "tiny", topics=TOPICS)
    return TorchClassifier(path, batch_size=2, max_length=16, threads=1)


def test_is_a_classifier_with_the_trained_topics(classifier: TorchClassifier) -> None:
    assert isinstance(classifier, Classifier)
    assert classifier.topics == tuple(sorted(TOPICS))
    name, digest = classifier.version.split("@")
    assert name == "tiny-test" and len(digest) == 12


def test_predictions_are_distributions_in_input_order(classifier: TorchClassifier) -> None:
    texts = [
        "a much longer headline about Aurora Motors shares that plunge after the regulator opens a probe",
        "股价跌",
        "",
        "profit beats estimates",
        "极光汽车遭证监会立案调查",
    ]
    predictions = classifier.classify(texts)
    assert len(predictions) == len(texts)
    for text, prediction in zip(texts, predictions, strict=True):
        assert isinstance(prediction, Prediction)
        assert math.isclose(sum(prediction.sentiment_scores.values()), 1.0, abs_tol=1e-4)
        assert math.isclose(sum(prediction.topic_scores.values()), 1.0, abs_tol=1e-4)
        assert tuple(prediction.sentiment_scores) == SENTIMENTS
        assert prediction.sentiment == max(
            prediction.sentiment_scores, key=prediction.sentiment_scores.__getitem__
        )
        assert prediction.topic in TOPICS
        expected = prediction.sentiment_scores["positive"] - prediction.sentiment_scores["negative"]
        assert math.isclose(prediction.sentiment_score, expected, abs_tol=1e-6)
        # batching sorted by length must not mix up rows: each text alone gives the same answer
        alone = classifier.classify([text])[0]
        for label, p in alone.sentiment_scores.items():
            assert math.isclose(p, prediction.sentiment_scores[label], abs_tol=1e-4)


def test_prediction_from_probabilities_checks_its_input() -> None:
    with pytest.raises(ValueError, match="expected probabilities"):
        Prediction.from_probabilities({"Macro": 1.0}, {"negative": 0.5, "positive": 0.5})
    p = Prediction.from_probabilities(
        {"Macro": 0.3, "Earnings": 0.7}, {"negative": 0.7, "neutral": 0.2, "positive": 0.1}
    )
    assert p.topic == "Earnings" and p.sentiment == "negative" and math.isclose(p.sentiment_score, -0.6)


def test_truncation_keeps_long_inputs_working(classifier: TorchClassifier, tmp_path: Path) -> None:
    long_text = "shares plunge " * 500
    assert classifier.classify([long_text])[0].sentiment in SENTIMENTS
