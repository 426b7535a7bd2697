"""The classify stage: raw items in, scored items (topic, sentiment, risk events, companies) out.

:func:`score_items` is the pure logic: personal data is masked out of title and body first (so the
model, the bus and the index only ever see the masked text), items are routed to a classifier by
language, and companies are linked. :func:`make_classify_handler` adapts it to the worker's
batch-of-records interface, dead-lettering records that are not valid :class:`RawItem` JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from finsentinel.bus.base import Record
from finsentinel.errors import ModelError, SchemaError
from finsentinel.schema import RawItem, ScoredItem
from finsentinel.worker import BatchHandler, Outcome, Output
from nlp.base import NO_EVENT, Classifier, Prediction
from nlp.linking import EntityLinker
from nlp.privacy import mask_pii_counts
from nlp.routing import Router

log = logging.getLogger(__name__)

UNSUPPORTED_LANG = "lang_unsupported"
PII_MASKED = "pii_masked"
RISK_FLAG_PREFIX = "risk:"
"""Risk-event types (models with an event head) travel as flags ``risk:<type>``, e.g. ``risk:信批违规``."""


def mask_item(item: RawItem) -> tuple[RawItem, bool]:
    """The item with personal data masked in title and body, and whether anything was masked."""
    title, body = mask_pii_counts(item.title), mask_pii_counts(item.body)
    if not (title.changed or body.changed):
        return item, False
    return item.model_copy(update={"title": title.text, "body": body.text}), True


def _classify_routed(items: Sequence[RawItem], router: Router) -> list[tuple[Prediction, str, bool]]:
    """(prediction, model version, flagged) per item, one classify call per routed classifier."""
    groups: dict[int, tuple[Classifier, list[int]]] = {}
    flagged = []
    for n, item in enumerate(items):
        route = router.route(item.lang)
        flagged.append(route.flagged)
        groups.setdefault(id(route.classifier), (route.classifier, []))[1].append(n)
    results: list[tuple[Prediction, str, bool] | None] = [None] * len(items)
    for classifier, positions in groups.values():
        predictions = classifier.classify([items[n].text for n in positions])
        if len(predictions) != len(positions):
            raise ModelError(
                f"classifier {classifier.version} returned {len(predictions)} predictions for "
                f"{len(positions)} texts"
            )
        version = classifier.version
        for n, prediction in zip(positions, predictions, strict=True):
            results[n] = (prediction, version, flagged[n])
    return [r for r in results if r is not None]


def score_items(
    items: Sequence[RawItem], classifier: Classifier | Router, linker: EntityLinker, mask: bool = True
) -> list[ScoredItem]:
    """Mask, classify and link ``items``; one :class:`ScoredItem` per item, in order.

    ``classifier`` is one classifier for every language or a :class:`Router`. Items in a language no
    model is declared for are still scored (by the default model) and flagged ``lang_unsupported``;
    items whose text had personal data masked are flagged ``pii_masked``.
    """
    if not items:
        return []
    router = classifier if isinstance(classifier, Router) else Router(classifier)
    masked = [mask_item(item) if mask else (item, False) for item in items]
    results = _classify_routed([m for m, _ in masked], router)
    scored = []
    for (item, was_masked), (prediction, version, unsupported) in zip(masked, results, strict=True):
        flags = (
            ((UNSUPPORTED_LANG,) if unsupported else ())
            + ((PII_MASKED,) if was_masked else ())
            + tuple(RISK_FLAG_PREFIX + e for e in prediction.events if e != NO_EVENT)
        )
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


def make_classify_handler(
    classifier: Classifier | Router, linker: EntityLinker, out_topic: str, mask: bool = True
) -> BatchHandler:
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
        scored = iter(score_items(valid, classifier, linker, mask))
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
