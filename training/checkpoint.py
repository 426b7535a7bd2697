"""Resumable training: the loop's whole state written every quarter epoch, safetensors + JSON only.

Long CPU runs (an hour per epoch) die with their process; with ``--checkpoint DIR`` a rerun of the
same command continues from the last checkpoint instead of from scratch. A checkpoint holds the
model and AdamW state, the random generators (batch order and dropout), the position in the
epoch, the validation history and the best epoch's weights. It is only resumed for the same
training rows and arguments (their fingerprint is stored); anything else starts afresh.
Written to a temporary directory and renamed, so a crash while saving keeps the previous one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from finsentinel.errors import ConfigError
from training.encoder import base_fingerprint

log = logging.getLogger(__name__)

META = "checkpoint.json"
MODEL = "model.safetensors"
BEST = "best.safetensors"
OPTIMIZER = "optimizer.safetensors"
RNG = "rng.safetensors"


@dataclass
class LoopState:
    """Where the loop is: the epoch, the batches of it already done, and what was seen so far."""

    epoch: int = 1
    batch_no: int = 0
    steps: int = 0
    best_epoch: int = 0
    best_score: float = float("-inf")
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    """Early stopping has ended the run."""
    epoch_generator: torch.Tensor | None = None
    """The batch-order generator's state at the start of ``epoch`` (its batches are recreated from it)."""


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{name}": (value if torch.is_tensor(value) else torch.tensor(value)).contiguous().cpu()
        for index, slots in state["state"].items()
        for name, value in slots.items()
    }
    return tensors, {"param_groups": state["param_groups"]}


def save_checkpoint(
    directory: Path,
    fingerprint: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: LoopState,
    best: dict[str, torch.Tensor] | None,
) -> None:
    """Write the loop's state to ``directory`` atomically."""
    tmp = directory.with_name(directory.name + ".writing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / MODEL))  # tied weights (an MLM decoder) stored once
    if best is not None:
        save_file(_tensors(best), str(tmp / BEST))
    tensors, groups = _optimizer_tensors(optimizer)
    save_file(tensors, str(tmp / OPTIMIZER))
    rng = {"torch": torch.get_rng_state()}
    if state.epoch_generator is not None:
        rng["epoch_generator"] = state.epoch_generator
    save_file(rng, str(tmp / RNG))
    meta = {
        "fingerprint": fingerprint,
        "epoch": state.epoch,
        "batch_no": state.batch_no,
        "steps": state.steps,
        "best_epoch": state.best_epoch,
        "best_score": state.best_score if state.best_score != float("-inf") else None,
        "history": state.history,
        "stopped": state.stopped,
        "optimizer": groups,
    }
    (tmp / META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    directory: Path, fingerprint: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[LoopState, dict[str, torch.Tensor] | None] | None:
    """Restore model, optimizer and RNG from ``directory``; None when there is no matching checkpoint."""
    try:
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("fingerprint") != fingerprint:
        log.warning("checkpoint in %s is for other data or arguments; starting afresh", directory)
        return None
    load_model(model, str(directory / MODEL))
    tensors = load_file(str(directory / OPTIMIZER))
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        slots.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": slots, "param_groups": meta["optimizer"]["param_groups"]})
    rng = load_file(str(directory / RNG))
    torch.set_rng_state(rng["torch"])
    best = load_file(str(directory / BEST)) if (directory / BEST).is_file() else None
    score = meta.get("best_score")
    state = LoopState(
        epoch=meta["epoch"],
        batch_no=meta["batch_no"],
        steps=meta["steps"],
        best_epoch=meta["best_epoch"],
        best_score=float("-inf") if score is None else float(score),
        history=meta["history"],
        stopped=bool(meta.get("stopped")),
        epoch_generator=rng.get("epoch_generator"),
    )
    return state, best


def check_checkpoint_dir(directory: Path, out: Path) -> None:
    """Refuse a checkpoint directory that would destroy something: the checkpoint is replaced while
    training and deleted once the model in ``out`` is written."""
    if directory.resolve() == out.resolve() or directory.resolve() in out.resolve().parents:
        raise ConfigError(
            f"--checkpoint {directory} is the same directory as the model (--out {out}) or holds it, and a "
            "checkpoint is deleted when the model is written: give the checkpoint a directory of its own"
        )
    if directory.exists() and (
        not directory.is_dir() or (any(directory.iterdir()) and not (directory / META).is_file())
    ):
        raise ConfigError(
            f"--checkpoint {directory} exists and is not a checkpoint directory (no {META}); it would be "
            "replaced and deleted: name a new directory, or one an interrupted run of this command wrote"
        )


def run_fingerprint(data_sha256: str, arguments: Mapping[str, Any], base_path: Path) -> str:
    """Identifies what a run's checkpoint was made from: its data, its arguments except ``threads``
    (a resumed run may use another count), and the base model."""
    settings = {k: v for k, v in arguments.items() if k != "threads"}
    digest = hashlib.sha256()
    for part in (data_sha256, json.dumps(settings, sort_keys=True), base_fingerprint(base_path)):
        digest.update(part.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Checkpointer:
    """A checkpoint directory for one training run (``fingerprint`` identifies its data and arguments)."""

    directory: Path
    fingerprint: str

    def save(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        state: LoopState,
        best: dict[str, torch.Tensor] | None,
    ) -> None:
        """Write the current state (atomically)."""
        save_checkpoint(self.directory, self.fingerprint, model, optimizer, state, best)

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[LoopState, dict[str, torch.Tensor] | None] | None:
        """The saved state (model and optimizer restored in place), or None to start afresh."""
        return load_checkpoint(self.directory, self.fingerprint, model, optimizer)

    def resume(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        report: Callable[[str], None],
    ) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
        """Where to start: a matching checkpoint's state, its learning-rate schedule replayed, or afresh."""
        restored = self.restore(model, optimizer)
        if restored is None:
            return LoopState(), None
        state, best = restored
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": replaying, not training
            for _ in range(state.steps):
                scheduler.step()
        report(f"resumed from {self.directory}: epoch {state.epoch}, {state.steps} steps done")
        return state, best

    def remove(self) -> None:
        """Delete the checkpoint (after the model is safely written)."""
        shutil.rmtree(self.directory, ignore_errors=True)
