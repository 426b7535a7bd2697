"""Labelled files in, training rows out: JSONL / JSON / CSV / TSV / parquet read with ``datasets``.

A row needs ``text`` plus ``label`` (sentiment) and/or ``topic``; ``lang`` is kept (or guessed from
the script when absent). Event files (``read_event_rows``) carry risk-event types in ``topics`` (a
list) or ``topic`` (types joined by spaces), as FinESE in ``../shared/data`` does. A label map
translates other sentiment vocabularies (``Bearish=negative,Bullish=positive,Neutral=neutral``);
labels are compared as strings, so numeric labels map too (``0=negative``). A target may be a
*partial* label, sentiments joined by ``|`` (``not_negative=neutral|positive``): the row says only
that its sentiment is one of those, and training maximises their summed probability (FinNSP tells
negative news from the rest, not neutral from positive). Scoring leaves partial labels out.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from finsentinel.errors import ConfigError
from finsentinel.schema import SENTIMENTS

log = logging.getLogger(__name__)

BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
_CJK = re.compile(r"[\u3400-\u9fff]")


PARTIAL = "|"


def sentiment_choices(label: str) -> tuple[str, ...] | None:
    """The sentiments a label allows (one, or several for a partial label); None when it is not valid."""
    parts = tuple(label.split(PARTIAL))
    valid = all(p in SENTIMENTS for p in parts) and len(set(parts)) == len(parts) < len(SENTIMENTS)
    return parts if valid else None


def is_partial(label: Any) -> bool:
    """True for a partial sentiment label such as ``neutral|positive``."""
    return isinstance(label, str) and PARTIAL in label


def parse_label_map(text: str | None) -> dict[str, str]:
    """``"Bearish=negative,Bullish=positive"`` as a dict; :class:`ConfigError` for a malformed entry."""
    if not text:
        return {}
    mapping: dict[str, str] = {}
    for part in text.split(","):
        source, sep, target = part.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ConfigError(f"--label-map: expected FROM=TO pairs separated by commas, got {part!r}")
        mapping[source.strip()] = target.strip()
    bad = sorted(v for v in mapping.values() if sentiment_choices(v) is None)
    if bad:
        raise ConfigError(
            f"--label-map: targets must be one of {list(SENTIMENTS)} or a partial label of two of them "
            f"joined by '{PARTIAL}' (e.g. not_negative=neutral{PARTIAL}positive), got {bad}"
        )
    return mapping


def guess_lang(text: str) -> str:
    """``zh`` when at least a fifth of the non-space characters are CJK ideographs, else ``en``."""
    chars = [c for c in text if not c.isspace()]
    return "zh" if chars and len(_CJK.findall(text)) * 5 >= len(chars) else "en"


def _is_blank(path: Path) -> bool:
    """True when the file holds nothing but whitespace (read up to its first other byte)."""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            if chunk.strip():
                return False
    return True


def load_records(source: str | Path) -> list[dict[str, Any]]:
    """All rows of a local file (by extension) or, where a hub is reachable, of a dataset id's train split."""
    path = Path(source)
    try:
        from datasets import load_dataset
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
        # A scratch cache, kept in memory: reading a local file leaves nothing behind in ~/.cache.
        with tempfile.TemporaryDirectory(prefix="finsentinel-datasets-") as cache:
            if path.exists():
                builder = BUILDERS.get(path.suffix.lower())
                if builder is None:
                    raise ConfigError(f"{path}: expected one of {sorted(BUILDERS)} files, got {path.suffix!r}")
                if path.is_file() and _is_blank(path):
                    raise ConfigError(f"{path} is empty: expected rows with a 'text' field")
                kwargs: dict[str, Any] = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
                dataset = load_dataset(builder, data_files=str(path), split="train", cache_dir=cache,
                                       keep_in_memory=True, **kwargs)
            else:
                name, _, split = str(source).partition(":")
                dataset = load_dataset(name, split=split or "train", cache_dir=cache, keep_in_memory=True)
            return [dict(row) for row in dataset]
    except ConfigError:
        raise
    except Exception as exc:  # datasets raises many unrelated types (FileNotFound, Hub, Arrow errors)
        cause = _reader_error(exc)
        raise ConfigError(
            f"cannot read labelled data '{source}' ({type(cause).__name__}: {str(cause)[:300]}); expected a "
            "JSONL/CSV/parquet file, or a dataset id where a hub is reachable"
        ) from exc


def _reader_error(exc: BaseException) -> BaseException:
    """The parser's own error inside a ``DatasetGenerationError`` (which says only that one occurred)."""
    from datasets.exceptions import DatasetGenerationError

    while isinstance(exc, DatasetGenerationError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _label_text(value: Any) -> str:
    """A label as written in its file: ``1`` for the 1.0 pandas reads from a numeric CSV column with blank cells."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def normalise_rows(
    records: Iterable[Mapping[str, Any]], label_map: Mapping[str, str], source: str
) -> list[dict[str, Any]]:
    """Keep ``text``, ``label`` (mapped), ``topic`` and ``lang``; drop rows with neither label (counted)."""
    rows, skipped = [], 0
    for n, record in enumerate(records):
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{source} row {n}: expected a non-empty 'text' string, got {text!r:.80}")
        row: dict[str, Any] = {"text": text, "lang": str(record.get("lang") or guess_lang(text))}
        label, topic = record.get("label"), record.get("topic")
        if label is not None and str(label) != "":
            mapped = label_map.get(_label_text(label), _label_text(label))
            if sentiment_choices(mapped) is None:
                raise ConfigError(
                    f"{source} row {n}: sentiment label {label!r} is not one of {list(SENTIMENTS)}; "
                    "translate it with --label-map FROM=TO,... (e.g. Bearish=negative,Bullish=positive,"
                    "Neutral=neutral) or training.label_map in the settings"
                )
            row["label"] = mapped
        if topic is not None and str(topic) != "":
            row["topic"] = _label_text(topic)
        if "label" in row or "topic" in row:
            rows.append(row)
        else:
            skipped += 1
    if skipped:
        log.warning("%s: %d rows carry neither 'label' nor 'topic' and were skipped", source, skipped)
    return rows


def read_rows(source: str | Path, label_map: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Sentiment and/or topic rows of one labelled file."""
    rows = normalise_rows(load_records(source), label_map or {}, str(source))
    if not rows:
        raise ConfigError(f"{source}: no rows with a 'label' or 'topic'")
    return rows


def read_event_rows(source: str | Path) -> list[dict[str, Any]]:
    """Risk-event rows (``text``, ``events``, ``lang``) of one file: types from ``topics`` or ``topic``."""
    rows = []
    for n, record in enumerate(load_records(source)):
        text = record.get("text")
        types = record.get("topics")
        if types is None and isinstance(record.get("topic"), str):
            types = record["topic"].split()
        if not isinstance(text, str) or not isinstance(types, list) or not types:
            raise ConfigError(
                f"{source} row {n}: expected 'text' and event types in 'topics' (a list) or 'topic' "
                f"(space-separated), got {dict(record)!r:.200}"
            )
        rows.append({"text": text, "events": [str(t) for t in types],
                     "lang": str(record.get("lang") or guess_lang(text))})
    return rows


def texts_of(source: str | Path, limit: int | None = None) -> list[str]:
    """The ``text`` column of a file (for benchmarks, export checks and prediction)."""
    texts = [str(r["text"]) for r in load_records(source) if isinstance(r.get("text"), str)]
    if not texts:
        raise ConfigError(f"{source}: no rows with a 'text' string")
    return texts[:limit] if limit else texts
