"""The classify stage: score_items over a test classifier, and the bus handler incl. bad records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from finsentinel.bus.base import Record
from finsentinel.errors import ModelError
from finsentinel.schema import RawItem, ScoredItem, content_id
from nlp.base import Prediction
from nlp.linking import EntityLinker, Watchlist
from nlp.stage import UNSUPPORTED_LANG, make_classify_handler, score_items
from nlp.torch_backend import TorchClassifier
from tests.tiny_model import make_tiny_model_dir

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class KeywordClassifier:
    """A transparent stand-in for a model: negative iff the text says 'plunge' or '暴跌'."""

    version = "keywords@test"
    topics = ("Stock Movement", "Earnings")

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            negative = "plunge" in text or "暴跌" in text
            sentiments = (
                {"negative": 0.9, "neutral": 0.05, "positive": 0.05}
                if negative
                else {"negative": 0.1, "neutral": 0.3, "positive": 0.6}
            )
            out.append(Prediction.from_probabilities({"Stock Movement": 0.8, "Earnings": 0.2}, sentiments))
        return out


def item(title: str, lang: str = "en", body: str = "", hints: tuple[str, ...] = ()) -> RawItem:
    return RawItem(
        id=content_id(None, title, body),
        source="test",
        title=title,
        body=body,
        lang=lang,
        published_at=T0,
        fetched_at=T0,
        entity_hints=hints,
    )


@pytest.fixture(scope="module")
def linker() -> EntityLinker:
    return EntityLinker(Watchlist.load())


def test_score_items_classifies_links_and_flags(linker: EntityLinker) -> None:
    classifier = KeywordClassifier()
    items = [
        item("Aurora Motors shares plunge"),
        item("北风银行发布公告", lang="zh", body="极光汽车股价暴跌"),
        item("Une annonce", lang="other", hints=("kestrel-cloud",)),
    ]
    scored = score_items(items, classifier, linker)
    assert classifier.calls == [[i.text for i in items]]  # one batch
    assert [s.id for s in scored] == [i.id for i in items]
    assert [s.sentiment for s in scored] == ["negative", "negative", "positive"]
    assert scored[0].sentiment_score == pytest.approx(-0.85) and scored[0].topic == "Stock Movement"
    assert scored[0].entities == ("aurora-motors",)
    assert scored[1].entities == ("aurora-motors", "northwind-bank")  # title and body
    assert scored[2].entities == ("kestrel-cloud",) and scored[2].flags == (UNSUPPORTED_LANG,)
    assert scored[0].flags == () and scored[0].model_version == "keywords@test"
    assert score_items([], classifier, linker) == [] and len(classifier.calls) == 1


def test_a_classifier_returning_the_wrong_count_is_a_model_error(linker: EntityLinker) -> None:
    class Broken(KeywordClassifier):
        def classify(self, texts: Sequence[str]) -> list[Prediction]:
            return super().classify(texts)[:-1]

    with pytest.raises(ModelError, match="returned 1 predictions for 2 texts"):
        score_items([item("a plunge"), item("b")], Broken(), linker)


def record(value: bytes, offset: int) -> Record:
    return Record(topic="news.raw", partition=0, offset=offset, key=None, value=value)


def test_handler_dead_letters_bad_records_and_scores_the_rest(linker: EntityLinker) -> None:
    classifier = KeywordClassifier()
    handler = make_classify_handler(classifier, linker, "news.scored")
    good = [item("Aurora Motors shares plunge"), item("极光汽车公告", lang="zh")]
    records = [
        record(good[0].to_json(), 0),
        record(b"{not json", 1),
        record(b'{"id": "short", "title": "x"}', 2),
        record(good[1].to_json(), 3),
        record(b"\xff\xfe", 4),
    ]
    outcomes = handler(records)
    assert len(outcomes) == 5 and len(classifier.calls) == 1 and len(classifier.calls[0]) == 2
    assert [o.error is None for o in outcomes] == [True, False, False, True, False]
    assert all("not a valid RawItem" in (o.error or "") for o in (outcomes[1], outcomes[2], outcomes[4]))
    for outcome, raw in zip((outcomes[0], outcomes[3]), good, strict=True):
        (output,) = outcome.outputs
        assert output.topic == "news.scored" and output.key == raw.id.encode()
        scored = ScoredItem.from_json(output.value)
        assert scored.id == raw.id and scored.entities == ("aurora-motors",)


def test_handler_with_only_bad_records_does_not_call_the_model(linker: EntityLinker) -> None:
    classifier = KeywordClassifier()
    outcomes = make_classify_handler(classifier, linker, "out")([record(b"[]", 0)])
    assert outcomes[0].error and classifier.calls == []


def test_handler_over_a_real_tiny_model(tmp_path: Path, linker: EntityLinker) -> None:
    classifier = TorchClassifier(make_tiny_model_dir(tmp_path / "m"))
    raw = item("Aurora Motors shares plunge after regulator opens fraud probe")
    (outcome,) = make_classify_handler(classifier, linker, "news.scored")([record(raw.to_json(), 0)])
    scored = ScoredItem.from_json(outcome.outputs[0].value)
    assert scored.model_version == classifier.version and scored.topic in classifier.topics
    assert sum(scored.sentiment_scores.values()) == pytest.approx(1.0, abs=1e-4)
