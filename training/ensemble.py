"""`finsentinel ngram`: add (or replace) the n-gram half of an existing model directory.

Fitting the n-gram model takes minutes where the network took hours, so its weight and features
can be changed without retraining the network (``finsentinel train --ngram-weight`` does both at
once). The directory is rewritten atomically with the new weights hash, the card's validation
metrics become those of the average, and the network's own metrics are kept beside them. An ONNX
export made before no longer matches the hash: run ``finsentinel export`` again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from finsentinel.errors import ConfigError
from finsentinel.schema import SENTIMENTS
from nlp.model import CARD_JSON, load_model, save_model
from nlp.ngram import fit_ngram
from nlp.torch_backend import predict_proba
from training.card import render_markdown
from training.combine import render_combined_card
from training.data import is_partial
from training.metrics import metrics_from_probabilities
from training.train import average_with_ngram, write_atomically

log = logging.getLogger(__name__)


def attach_ngram(
    model_dir: str | Path,
    rows_train: Sequence[Mapping[str, Any]],
    rows_valid: Sequence[Mapping[str, Any]],
    weight: float,
    analysers: str = "word+char",
    c: float = 10.0,
    seed: int = 13,
    sources: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Fit the n-gram model on ``rows_train`` and store it in ``model_dir`` with ``weight``; return metrics."""
    if not 0 < weight < 1:
        raise ConfigError(f"expected an n-gram weight in (0, 1), got {weight}")
    path = Path(model_dir)
    loaded = load_model(path)
    spec = loaded.spec
    unknown = sorted({str(r["topic"]) for r in rows_train if r.get("topic") is not None} - set(spec.topics))
    if unknown:
        raise ConfigError(f"training topics {unknown[:5]} are not topics of the model {loaded.version}")
    heads: dict[str, list[str]] = {"topic": list(spec.topics), "sentiment": list(SENTIMENTS)}
    # A linear n-gram model cannot learn from partial labels (neutral|positive): those rows lose the label.
    plain = [{k: v for k, v in r.items() if k != "label"} if is_partial(r.get("label")) else r for r in rows_train]
    rows = [r for r in plain if r.get("topic") is not None or r.get("label") is not None]
    event_rows = [r for r in rows_train if r.get("events") is not None]
    if event_rows:
        _check_events(event_rows, spec.events, loaded.version)
        heads["events"] = list(spec.events)
        rows += event_rows
    ngram = fit_ngram(rows, heads, analysers, c, seed)
    network, ensemble = {}, {}
    if rows_valid:
        texts = [str(r["text"]) for r in rows_valid]
        probs = list(predict_proba(loaded.model, loaded.tokenizer, texts, 64, spec.max_length))
        network = metrics_from_probabilities(rows_valid, probs, spec.topics, spec.events)
        probs = average_with_ngram(probs, ngram.probabilities(texts), weight)
        ensemble = metrics_from_probabilities(rows_valid, probs, spec.topics, spec.events)
    card = _card(path)
    card["ngram"] = {"weight": weight, "analysers": analysers, "c": c, "seed": seed, "files": list(sources),
                     "train_rows": len(rows), "heads": sorted(heads)}
    if ensemble:
        card["network_only_metrics"] = {"valid": network}
        card["validation_metrics"] = ensemble
    new_spec = replace(spec, ngram_weight=weight)
    try:
        render = render_combined_card if "members" in card else render_markdown  # a weight soup's card
        card_pair: tuple[dict[str, Any], str] | None = (card, render(card))
    except (KeyError, TypeError, AttributeError):
        card_pair = None  # no (complete) card to carry over
    write_atomically(
        path, lambda tmp: save_model(loaded.model, loaded.tokenizer, new_spec, tmp, card_pair, ngram=ngram)
    )
    return {"model_dir": str(path), "network": network, "ensemble": ensemble}


def _check_events(rows: Sequence[Mapping[str, Any]], known: Sequence[str], version: str) -> None:
    if not known:
        raise ConfigError(f"event rows were given but the model {version} has no event head; "
                          "train it with --events, or leave the event files out")
    unknown = sorted({e for r in rows for e in r["events"]} - set(known))
    if unknown:
        raise ConfigError(f"event types {unknown[:5]} are not event types of the model {version}")


def _card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads((path / CARD_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}
