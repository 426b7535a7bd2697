"""`finsentinel soup`: one model whose weights are the mean of several fine-tuned models' weights.

An ensemble (:mod:`training.combine`) averages its members' probabilities and runs every member's
encoder on each text; a weight soup (Wortsman et al. 2022, "Model soups") averages the weights
themselves, so it costs one model's inference. That works for models fine-tuned from one base
model with the same labels and vocabulary, whose weights stay close to their common starting point
(seeds or hyperparameters of one recipe); :func:`check_soup` refuses anything else with the reason.
The soup is an ordinary model directory: it is exported, served and retrained like any other.
No library here averages Hugging Face checkpoints with these checks, hence this module.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from finsentinel.errors import ConfigError, ModelError
from nlp.ensemble import member_specs
from nlp.model import (
    CARD_JSON,
    CARD_MD,
    CONFIG_FILE,
    ENCODER_FILE,
    HEADS_FILE,
    NGRAM_FILES,
    SPEC_FILE,
    TOKENIZER_FILES,
    ModelSpec,
    read_weights,
    weights_sha256,
)
from training.card import code_version
from training.combine import member_card, model_metrics, render_combined_card
from training.train import check_out_dir, write_atomically

_OWN_FILES = frozenset({ENCODER_FILE, HEADS_FILE, SPEC_FILE, CARD_JSON, CARD_MD, *NGRAM_FILES})
_SAME_FIELDS = ("pooling", "max_length")


def check_soup(
    out: str | Path, members: Sequence[str | Path], with_ngram: bool = True
) -> tuple[list[ModelSpec], list[dict[str, Any]]]:
    """The members' specs and card summaries (:func:`~training.combine.member_card`), once they can be
    averaged into ``out``.

    :class:`ConfigError` for fewer than two members, ``out`` among them, or n-gram halves that differ
    while ``with_ngram``; :class:`ModelError` when a member is unusable or the members differ in
    labels, base model, pooling, length, config or vocabulary.
    """
    target, paths = Path(out), [Path(m) for m in members]
    if len(paths) < 2:
        raise ConfigError(f"expected at least two --members, got {len(paths)}")
    if target.resolve() in {p.resolve() for p in paths}:
        raise ConfigError(f"--out {target} is one of the members; write the soup to a directory of its own")
    check_out_dir(target)
    specs = member_specs(paths)
    cards = [member_card(p, s.version) for p, s in zip(paths, specs, strict=True)]
    bases = [_base(card, spec) for card, spec in zip(cards, specs, strict=True)]
    for path, spec, base in zip(paths[1:], specs[1:], bases[1:], strict=True):
        if base != bases[0]:
            raise ModelError(
                f"models {paths[0]} and {path} were fine-tuned from different base models ({bases[0]} against "
                f"{base}); a soup averages models that started from the same weights: use `finsentinel "
                "ensemble` for these"
            )
        for field in _SAME_FIELDS:
            if getattr(spec, field) != getattr(specs[0], field):
                raise ModelError(
                    f"models {paths[0]} and {path} differ in {field} ({getattr(specs[0], field)!r} against "
                    f"{getattr(spec, field)!r}); a soup averages models of one recipe: use `finsentinel ensemble` "
                    "for these"
                )
        for name in (CONFIG_FILE, *TOKENIZER_FILES):
            if _content(paths[0] / name) != _content(path / name):
                raise ModelError(
                    f"{paths[0] / name} and {path / name} differ: the members have another encoder "
                    "configuration or vocabulary; use `finsentinel ensemble` for these"
                )
    if with_ngram and len({_ngram_content(p, s) for p, s in zip(paths, specs, strict=True)}) > 1:
        raise ConfigError(
            "the members' n-gram halves differ (or only some have one), and a soup carries one: pass "
            "--no-ngram to write the network alone, then fit one with `finsentinel ngram --model OUT`"
        )
    return specs, cards


def average_weights(files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of safetensors files with the same tensors (float32 sums, stored dtype kept).

    Tensors that are not floating point (position ids) must be equal in every file.
    """
    states = [read_weights(f) for f in files]
    first = states[0]
    for file, state in zip(files[1:], states[1:], strict=True):
        odd = sorted(set(first) ^ set(state)) or [k for k in first if first[k].shape != state[k].shape]
        if odd:
            raise ModelError(
                f"{files[0]} and {file} hold different tensors (first: {odd[0]!r}); a soup needs models of "
                "one architecture and vocabulary"
            )
    mean: dict[str, torch.Tensor] = {}
    for key, tensor in first.items():
        if tensor.is_floating_point():
            total = torch.stack([s[key].float() for s in states]).mean(dim=0)
            mean[key] = total.to(tensor.dtype).contiguous()
        elif all(torch.equal(tensor, s[key]) for s in states[1:]):
            mean[key] = tensor.contiguous()
        else:
            raise ModelError(
                f"tensor {key!r} is not floating point and differs between the members; a soup needs models "
                "fine-tuned from one base model"
            )
    return mean


def write_soup(
    out: str | Path,
    members: Sequence[str | Path],
    name: str | None = None,
    rows: Sequence[Mapping[str, Any]] = (),
    with_ngram: bool = True,
) -> dict[str, Any]:
    """Average the members into the model directory ``out`` (scored on ``rows`` for its card); return the card.

    Written into a temporary directory and renamed into place, so ``out`` is never half-written.
    """
    specs, cards = check_soup(out, members, with_ngram)
    paths, target = [Path(m) for m in members], Path(out)
    keep_ngram = with_ngram and specs[0].ngram_weight > 0

    def write(tmp: Path) -> dict[str, Any]:
        for file in sorted(paths[0].iterdir()):  # config, tokenizer: the same in every member (checked)
            if file.is_file() and file.name not in _OWN_FILES:
                shutil.copyfile(file, tmp / file.name)
        for ngram_file in NGRAM_FILES if keep_ngram else ():
            shutil.copyfile(paths[0] / ngram_file, tmp / ngram_file)
        for weights in (ENCODER_FILE, HEADS_FILE):
            save_file(average_weights([p / weights for p in paths]), str(tmp / weights), metadata={"format": "pt"})
            (tmp / weights).chmod(0o644)
        spec = replace(specs[0], name=name or target.name, weights_sha256=weights_sha256(tmp),
                       ngram_weight=specs[0].ngram_weight if keep_ngram else 0.0)
        (tmp / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")
        card = _card(spec, cards, model_metrics([tmp], rows) if rows else {})
        (tmp / CARD_JSON).write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (tmp / CARD_MD).write_text(render_combined_card(card), encoding="utf-8")
        return card

    return write_atomically(target, write)


def _card(spec: ModelSpec, members: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "task": "weight soup: the element-wise mean of its members' encoder and head weights",
        "kind": "weight soup",
        "cost": "One encoder runs on each text: it costs one model's inference time.",
        "topics": list(spec.topics),
        "members": list(members),
        "validation_metrics": dict(metrics),
        "code_version": code_version(),
    }


def _base(card: Mapping[str, Any], spec: ModelSpec) -> str:
    """What a member was fine-tuned from: the base model's fingerprint in its card, else the path it names."""
    fingerprint = (card.get("base_model") or {}).get("sha256")
    return f"fingerprint {str(fingerprint)[:16]}" if fingerprint else f"path {spec.base_model!r}"


def _content(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _ngram_content(path: Path, spec: ModelSpec) -> tuple[object, ...]:
    return (spec.ngram_weight, *(_content(path / n) for n in NGRAM_FILES)) if spec.ngram_weight > 0 else (0.0,)
