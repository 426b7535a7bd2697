"""Labels: a person corrects an indexed item's sentiment or topic; labels export as training rows.

``finsentinel label ITEM_ID --sentiment negative`` stores a :class:`~finsentinel.schema.Label` in
the index (beside the items and alerts, so every analyst of a deployment writes to one place);
``finsentinel labels export --out FILE.jsonl`` writes them in the format ``finsentinel train``
reads (``text``, ``label``, ``topic``, ``lang``), ready to retrain on.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from finsentinel.errors import ConfigError
from finsentinel.schema import Label, ScoredItem, Sentiment


def check_topic(item: ScoredItem, topic: str, taxonomy: Mapping[str, Sequence[str]]) -> None:
    """Accept ``topic`` if the item's language has it in ``nlp.taxonomy``, or, with no taxonomy for
    that language, if the model that scored the item knows it; else say which topics there are."""
    known = list(taxonomy.get(item.lang) or item.topic_scores)
    if topic not in known:
        where = f"nlp.taxonomy.{item.lang}" if item.lang in taxonomy else f"the model that scored it ({item.model_version})"
        raise ConfigError(f"topic {topic!r} is not a topic of {where}: expected one of {sorted(known)}")


def make_label(item: ScoredItem, sentiment: Sentiment | None, topic: str | None, by: str, note: str,
               taxonomy: Mapping[str, Sequence[str]], now: datetime, previous: Label | None = None) -> Label:
    """The label of ``item``: its text and language as classified, the verdict, and what the model said.

    With the item's ``previous`` label, what this one does not say (its sentiment, topic or note)
    is kept from that one: one person corrects the sentiment, another the topic, and both stand."""
    if sentiment is None and topic is None:
        raise ConfigError("a label needs --sentiment, --topic, or both")
    if topic is not None:
        check_topic(item, topic, taxonomy)
    if previous is not None:
        sentiment, topic = sentiment or previous.sentiment, topic or previous.topic
        note = note or previous.note
    return Label(item_id=item.id, text=item.text, lang=item.lang, sentiment=sentiment, topic=topic, by=by,
                 note=note, predicted_sentiment=item.sentiment, predicted_topic=item.topic, created_at=now)


def training_row(label: Label) -> dict[str, Any]:
    """A row of a labelled training file: ``text``, ``lang``, ``label`` and ``topic``, and provenance.

    Every row has both ``label`` and ``topic``, ``""`` (no label, to ``finsentinel train``) where the
    person gave none: the JSON reader takes a file's columns from its first 10 MB, and would refuse a
    column first seen after that, e.g. the first topic of a desk that labelled only sentiments at first.
    """
    row: dict[str, Any] = {"text": label.text, "lang": label.lang, "label": label.sentiment or "",
                           "topic": label.topic or ""}
    row.update(id=label.item_id, by=label.by, created_at=label.created_at.isoformat(),
               predicted_label=label.predicted_sentiment, predicted_topic=label.predicted_topic)
    return row


def export(labels: Sequence[Label], out: Path) -> dict[str, int]:
    """Write ``labels`` as JSONL training rows, oldest first, atomically; counts of what was written.

    No labels, no file: an earlier export at ``out`` is left as it was (an empty one would replace
    it, and ``finsentinel train`` refuses an empty file anyway)."""
    rows = [training_row(lb) for lb in sorted(labels, key=lambda lb: (lb.created_at, lb.item_id))]
    if not rows:
        return {"labels": 0, "sentiment": 0, "topic": 0, "corrections": 0}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as exc:
        raise _unwritable(out, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a training file is meant to be read by whoever trains
        os.replace(tmp, out)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _unwritable(out, exc) from exc
        raise
    return {
        "labels": len(rows), "sentiment": sum(r["label"] != "" for r in rows), "topic": sum(r["topic"] != "" for r in rows),
        "corrections": sum((r["label"] or r["predicted_label"]) != r["predicted_label"]
                           or (r["topic"] or r["predicted_topic"]) != r["predicted_topic"] for r in rows),
    }


def _unwritable(out: Path, exc: OSError) -> ConfigError:
    return ConfigError(f"cannot write the labels to {out}: {exc.strerror or exc}; choose another --out")
