"""`finsentinel ensemble`: write an ensemble directory over trained model directories.

The members are referenced (by paths relative to the ensemble directory), not copied: each is a
full model directory of several hundred megabytes with its own n-gram half and ONNX export. The
card lists every member's version, data, arguments and validation metrics, and the ensemble's own
metrics when validation rows are given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finsentinel.errors import ConfigError
from nlp.ensemble import ENSEMBLE_FILE, EnsembleSpec, member_specs, open_engine
from nlp.model import CARD_JSON, CARD_MD, SPEC_FILE, ModelSpec
from training.card import code_version, metric_lines
from training.metrics import metrics_from_probabilities

ENSEMBLE_COST = "Every member's encoder runs on each text, so it costs the sum of the members' inference time."


def check_ensemble(out: str | Path, members: Sequence[str | Path]) -> list[ModelSpec]:
    """The members' specs, once ``out`` and the members are fit to make an ensemble.

    :class:`ConfigError` when ``out`` is a model directory or one of the members, or fewer than two
    members are given; :class:`~finsentinel.errors.ModelError` when a member is unusable or the
    members' label lists differ.
    """
    target, paths = Path(out), [Path(m) for m in members]
    if len(paths) < 2:
        raise ConfigError(f"expected at least two --members, got {len(paths)}")
    if (target / SPEC_FILE).is_file() or target.resolve() in {p.resolve() for p in paths}:
        raise ConfigError(
            f"{target} is a model directory; an ensemble references its members and needs a directory of "
            "its own: choose another --out"
        )
    return member_specs(paths)


def write_ensemble(
    out: str | Path,
    members: Sequence[str | Path],
    name: str | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Check the members (:func:`check_ensemble`), write ``out/ensemble.json`` and its card; return the card."""
    specs = check_ensemble(out, members)
    target, paths = Path(out), [Path(m) for m in members]
    target.mkdir(parents=True, exist_ok=True)
    relative = tuple(os.path.relpath(p.resolve(), target.resolve()) for p in paths)
    spec = EnsembleSpec(name or target.name, relative, tuple(s.version for s in specs))
    card = {
        "name": spec.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "task": "ensemble: the mean of its members' topic, sentiment (and risk-event) probabilities",
        "kind": "ensemble",
        "cost": ENSEMBLE_COST,
        "topics": list(specs[0].topics),
        "members": [member_card(p, v) for p, v in zip(paths, spec.versions, strict=True)],
        "validation_metrics": dict(metrics or {}),
        "code_version": code_version(),
    }
    _write_file(target / CARD_JSON, json.dumps(card, ensure_ascii=False, indent=2) + "\n")
    _write_file(target / CARD_MD, render_combined_card(card))
    _write_file(target / ENSEMBLE_FILE, spec.to_json())
    return card


def model_metrics(members: Sequence[str | Path], rows: Sequence[Mapping[str, Any]],
                  backend: str = "torch") -> dict[str, Any]:
    """Every head's scores on labelled rows for the mean of the members' probabilities (one member: its own)."""
    if not rows:
        return {}
    engine = open_engine(list(members), backend)  # type: ignore[arg-type]
    probs = engine.probabilities([str(r["text"]) for r in rows])
    return metrics_from_probabilities(rows, probs, engine.spec.topics, engine.spec.events)  # type: ignore[arg-type]


def _write_file(path: Path, text: str) -> None:
    """Write through a temporary file and rename it into place (never a half-written file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def member_card(path: Path, version: str) -> dict[str, Any]:
    """A member's path, version and the parts of its own card that say what it is."""
    try:
        card = json.loads((path / CARD_JSON).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        card = {}
    keys = ("base_model", "data", "training_args", "validation_metrics", "ngram")
    return {"path": str(path), "version": version, **{k: card[k] for k in keys if k in card}}


def render_combined_card(card: Mapping[str, Any]) -> str:
    """The human-readable card of a model made of members: an ensemble, or a weight soup (``kind``)."""
    versions, kind = card["code_version"], card.get("kind", "ensemble")
    lines = [
        f"# Model card: {card['name']} ({kind})",
        "",
        f"Created {card['created_at']} by FinSentinel {versions.get('finsentinel')} "
        f"(git {versions.get('git_commit') or 'unknown'}).",
        "",
        f"{card['task']}. Topics: {', '.join(card['topics'])}. {card.get('cost', ENSEMBLE_COST)}",
        "",
        "## Members",
        "",
    ]
    for member in card["members"]:
        args = member.get("training_args") or {}
        seed, epochs = args.get("seed", "-"), args.get("epochs", "-")
        lines.append(f"- `{member['path']}` ({member['version']}): seed {seed}, {epochs} epochs")
    for member in card["members"]:
        if member.get("validation_metrics"):
            lines += ["", f"`{member['version']}` on its validation files:", "",
                      *metric_lines(member["validation_metrics"])]
    lines += ["", f"## Validation of the {kind}", ""]
    lines += metric_lines(card["validation_metrics"]) if card["validation_metrics"] else ["Not measured."]
    if card.get("ngram"):  # `finsentinel ngram` run on a weight soup
        ngram = card["ngram"]
        files = ", ".join(str(f.get("path")) for f in ngram.get("files", [])) or "-"
        lines += ["", f"With an n-gram half at weight {ngram.get('weight')} ({ngram.get('analysers')}, "
                  f"C {ngram.get('c')}), fit on {files}."]
    lines += ["", "See each member's own card for its data and training arguments.", ""]
    return "\n".join(lines)
