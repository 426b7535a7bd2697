"""Model cards: what a trained model is, what it was trained on, how, and how well it did.

Written as ``model_card.json`` (machine-readable; :mod:`training.seed` reads its cache key) and
``MODEL_CARD.md`` (for people).
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def rows_sha256(rows: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 of the rows as canonical JSON lines: identifies training data wherever it came from."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
    return digest.hexdigest()


def describe_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Row count, content hash and label distributions of a data split."""
    return {
        "rows": len(rows),
        "sha256": rows_sha256(rows),
        "sentiment": dict(
            sorted(Counter(str(r["label"]) for r in rows if r.get("label") is not None).items())
        ),
        "topic": dict(sorted(Counter(str(r["topic"]) for r in rows if r.get("topic") is not None).items())),
        "lang": dict(sorted(Counter(str(r.get("lang", "?")) for r in rows).items())),
    }


def git_commit(root: Path = REPO_ROOT) -> str | None:
    """The checked-out commit of the source tree, read from .git (no subprocess); None outside a clone."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text(encoding="utf-8").strip() or None
        for line in (git / "packed-refs").read_text(encoding="utf-8").splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    except OSError:
        return None
    return None


def code_version() -> dict[str, str | None]:
    """Package version, git commit and the versions of the libraries that shape the weights."""

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {
        "finsentinel": version("finsentinel"),
        "git_commit": git_commit(),
        "torch": version("torch"),
        "transformers": version("transformers"),
        "tokenizers": version("tokenizers"),
        "python": platform.python_version(),
    }


def build_card(
    name: str,
    base: Mapping[str, Any],
    data: Mapping[str, Any],
    args: Mapping[str, Any],
    training: Mapping[str, Any],
    metrics: Mapping[str, Any],
    topics: Sequence[str],
    extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """(model_card.json content, MODEL_CARD.md text)."""
    card: dict[str, Any] = {
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "task": "multi-task text classification: topic + sentiment (negative/neutral/positive)",
        "languages": sorted(data.get("train", {}).get("lang", {})),
        "topics": list(topics),
        "base_model": dict(base),
        "data": dict(data),
        "training_args": dict(args),
        "training": dict(training),
        "validation_metrics": dict(metrics),
        "code_version": code_version(),
        **(dict(extra) if extra else {}),
    }
    return card, render_markdown(card)


def metric_lines(metrics: Mapping[str, Any]) -> list[str]:
    """Markdown lines for validation metrics: a table of the heads, a sentence for risk events."""
    lines = ["| head | rows | accuracy | macro-F1 | en accuracy | zh accuracy |", "|---|---|---|---|---|---|"]
    for head in ("sentiment", "topic"):
        m = metrics.get(head) or {}
        if not m.get("n"):
            continue
        by_lang = m.get("by_lang", {})
        lines.append(
            f"| {head} | {m['n']} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | "
            f"{by_lang.get('en', {}).get('accuracy', '-')} | {by_lang.get('zh', {}).get('accuracy', '-')} |"
        )
    events = metrics.get("events") or {}
    if events.get("n"):
        lines += ["", f"Risk events ({events['n']} rows): micro-F1 {events['micro_f1']:.3f}, "
                  f"macro-F1 {events['macro_f1']:.3f}, exact match {events['exact_match']:.3f}."]
    return lines


def render_markdown(card: Mapping[str, Any]) -> str:
    """The human-readable card."""
    data, base, training = card["data"], card["base_model"], card["training"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"Created {card['created_at']} by FinSentinel {card['code_version'].get('finsentinel')} "
        f"(git {card['code_version'].get('git_commit') or 'unknown'}).",
        "",
        "## What it does",
        "",
        f"{card['task']}, for financial news headlines and posts in {', '.join(card['languages']) or '-'}.",
        f"Topics: {', '.join(card['topics'])}.",
        "One shared transformer encoder with a linear head per task; the sentiment score of an item is "
        "P(positive) - P(negative).",
        "",
        "## Base model",
        "",
        f"`{base.get('name')}` ({base.get('architecture')}), fingerprint `{str(base.get('sha256'))[:16]}`; "
        f"{training.get('added_tokens', 0)} characters added to its vocabulary from the training texts.",
        "",
        "## Data",
        "",
    ]
    for split in ("train", "valid"):
        info = data.get(split) or {}
        lines.append(
            f"- {split}: {info.get('rows', 0)} rows, sha256 `{str(info.get('sha256'))[:16]}`, "
            f"languages {info.get('lang')}, sentiment {info.get('sentiment')}"
        )
    for source in data.get("files", []):
        rows = f"{source['rows']} rows, " if "rows" in source else ""
        role = f" ({source['role']})" if "role" in source else ""
        lines.append(f"- file `{source.get('path')}`{role}: {rows}sha256 `{source.get('sha256')}`")
    if data.get("notes"):
        lines += ["", str(data["notes"])]
    lines += ["", "## Validation", "", *metric_lines(card["validation_metrics"])]
    for name, metrics in (card.get("extra_evaluations") or {}).items():
        lines += ["", f"Evaluation set `{name}`:", "", *metric_lines(metrics)]
    lines += [
        "",
        "## Training",
        "",
        "```json",
        json.dumps(card["training_args"], indent=2),
        "```",
        "",
        f"{training.get('steps')} optimiser steps in {training.get('seconds')} s "
        f"on {training.get('threads')} "
        f"CPU threads.",
        "",
        "## Limitations",
        "",
        "Trained on the data listed above only. Headlines unlike it (other domains, long articles, "
        "sarcasm, mixed sentiment) are classified with less accuracy than the validation figures "
        "suggest; check the model on your own labelled sample before relying on its alerts.",
        "",
    ]
    return "\n".join(lines)


def describe_file(path: str | Path, role: str) -> dict[str, Any]:
    """Path, role and SHA-256 of a data file (a dataset id that is not a local file gets no hash)."""
    file = Path(path)
    if not file.is_file():
        return {"path": str(path), "role": role}
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": str(path), "role": role, "sha256": digest.hexdigest()}
