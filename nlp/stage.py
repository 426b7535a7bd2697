"""The classify stage: raw items in, scored items (topic, sentiment, companies) out.

:func:`score_items` is the pure logic; :func:`make_classify_handler` adapts it to the worker's
batch-of-records interface, dead-lettering records that are not valid :class:`RawItem` JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from finsentinel.bus.base import Record
from finsentinel.errors import ModelError, SchemaError
from finsentinel.schema import RawItem, ScoredItem
from finsentinel.worker import BatchHandler, Outcome, Output
from nlp.base import Classifier
from nlp.linking import EntityLinker

log = logging.getLogger(__name__)

UNSUPPORTED_LANG = "lang_unsupported"
SUPPORTED_LANGS = frozenset({"en", "zh"})


def score_items(items: Sequence[RawItem], classifier: Classifier, linker: EntityLinker) -> list[ScoredItem]:
    """Classify ``items`` in one batch and link their companies; one :class:`ScoredItem` per item, in order.

    Items in a language the model was not trained for (``lang`` 'other') are still scored, and
    flagged ``lang_unsupported`` so that readers and the detector can discount them.
    """
    if not items:
        return []
    predictions = classifier.classify([item.text for item in items])
    if len(predictions) != len(items):
        raise ModelError(
            f"classifier {classifier.version} returned {len(predictions)} predictions for {len(items)} texts"
        )
    version = classifier.version
    scored = []
    for item, prediction in zip(items, predictions, strict=True):
        flags = () if item.lang in SUPPORTED_LANGS else (UNSUPPORTED_LANG,)
        scored.append(
            ScoredItem.from_raw(
                item,
                topic=prediction.topic,
                topic_scores=dict(prediction.topic_scores),
                sentiment=prediction.sentiment,
                sentiment_scores=dict(prediction.sentiment_scores),
                sentiment_score=prediction.sentiment_score,
                entities=linker.link(f"{item.title}\n{item.body}", hints=item.entity_hints),
                model_version=version,
                flags=flags,
            )
        )
    return scored


def make_classify_handler(classifier: Classifier, linker: EntityLinker, out_topic: str) -> BatchHandler:
    """A worker handler: decode raw items, score the valid ones together, publish them to ``out_topic``.

    A record that is not a valid RawItem gets a failed outcome (the worker dead-letters it with the
    reason); the others are published as ScoredItem JSON keyed by the item id.
    """

    def handle(records: Sequence[Record]) -> list[Outcome]:
        decoded: list[RawItem | SchemaError] = []
        for record in records:
            try:
                decoded.append(RawItem.from_json(record.value))
            except SchemaError as exc:
                decoded.append(exc)
        valid = [d for d in decoded if isinstance(d, RawItem)]
        scored = iter(score_items(valid, classifier, linker))
        outcomes = []
        for item in decoded:
            if isinstance(item, SchemaError):
                outcomes.append(Outcome.failed(str(item)))
                continue
            result = next(scored)
            outcomes.append(Outcome(outputs=(Output(out_topic, result.to_json(), key=result.id.encode()),)))
        if len(valid) < len(records):
            log.info(
                "classify: %d of %d records were not valid raw items", len(records) - len(valid), len(records)
            )
        return outcomes

    return handle
