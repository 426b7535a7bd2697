"""Ensembles: several trained model directories served as one classifier (mean of probabilities).

Averaging the probabilities of separately trained networks is the one measured way past what a
single network reaches on some tasks (see the README's Chinese table), at the cost of running
every member's encoder on each text. An ensemble directory holds only ``ensemble.json`` (format,
name, member paths relative to the directory or absolute, and each member's version when the
ensemble was written) and a model card; the members stay ordinary model directories, so each keeps
its own n-gram half and ONNX export. :func:`open_engine` is how every command opens a model: it
returns an :class:`EnsembleEngine` for an ensemble directory (or a list of directories) and a plain
:class:`~nlp.engine.InferenceEngine` otherwise.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from finsentinel.errors import ModelError
from nlp.engine import Backend, InferenceEngine
from nlp.model import ENSEMBLE_FILE, ModelSpec, check_model_dir

log = logging.getLogger(__name__)

ENSEMBLE_FORMAT = "finsentinel-ensemble"
ENSEMBLE_VERSION = 1
ENSEMBLE_HINT = "write it again with `finsentinel ensemble --out DIR --members DIR DIR ...`"


@dataclass(frozen=True, slots=True)
class EnsembleSpec:
    """What ``ensemble.json`` says: the name, the member paths and their versions when written."""

    name: str
    members: tuple[str, ...]
    versions: tuple[str, ...]
    format: str = ENSEMBLE_FORMAT
    format_version: int = ENSEMBLE_VERSION

    def paths(self, root: Path) -> list[Path]:
        """Member directories; relative paths are taken from the ensemble directory ``root``."""
        return [p if p.is_absolute() else root / p for p in map(Path, self.members)]

    def to_json(self) -> str:
        """Pretty JSON for ``ensemble.json``."""
        return json.dumps(
            {"format": self.format, "format_version": self.format_version, "name": self.name,
             "members": list(self.members), "versions": list(self.versions)},
            ensure_ascii=False, indent=2,
        ) + "\n"


def is_ensemble(path: str | Path) -> bool:
    """Whether ``path`` is an ensemble directory (holds ``ensemble.json``)."""
    return (Path(path) / ENSEMBLE_FILE).is_file()


def read_ensemble(path: Path) -> EnsembleSpec:
    """Read and check ``path/ensemble.json``; :class:`ModelError` naming the problem."""
    file = path / ENSEMBLE_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{file} is not readable JSON ({exc}); {ENSEMBLE_HINT}") from exc
    if not isinstance(data, dict) or data.get("format") != ENSEMBLE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise ModelError(f"{file}: expected format {ENSEMBLE_FORMAT!r}, got {found!r}; {ENSEMBLE_HINT}")
    if data.get("format_version") != ENSEMBLE_VERSION:
        raise ModelError(
            f"{file} has format version {data.get('format_version')!r}, this release reads "
            f"{ENSEMBLE_VERSION}: it comes from another release; {ENSEMBLE_HINT}"
        )
    members, versions = data.get("members"), data.get("versions")
    if (not isinstance(members, list) or len(members) < 2 or not isinstance(versions, list)
            or len(versions) != len(members) or not all(isinstance(v, str) for v in members + versions)):
        raise ModelError(
            f"{file}: expected at least two member paths and as many versions, got members "
            f"{members!r} and versions {versions!r}; {ENSEMBLE_HINT}"
        )
    return EnsembleSpec(str(data.get("name") or path.name), tuple(members), tuple(versions))


def member_specs(paths: Sequence[Path]) -> list[ModelSpec]:
    """Each member's spec, checked: model directories (not ensembles) with the same label lists."""
    specs = []
    for path in paths:
        if is_ensemble(path):
            raise ModelError(f"member {path} is itself an ensemble directory; list its members instead")
        specs.append(check_model_dir(path))
    for path, spec in zip(paths[1:], specs[1:], strict=True):
        for field in ("topics", "sentiments", "events"):
            if getattr(spec, field) != getattr(specs[0], field):
                raise ModelError(
                    f"models {paths[0]} and {path} have different {field} ({list(getattr(specs[0], field))} "
                    f"against {list(getattr(spec, field))}); models are combined (ensemble or soup) only "
                    "when their label lists are the same"
                )
    return specs


class EnsembleEngine(InferenceEngine):
    """An :class:`InferenceEngine` whose probabilities are the mean of its members' engines.

    Built over an ensemble directory (``model_dir``) or over a list of model directories
    (``members``; then ``model_dir`` is only a label). Batching, ``classify`` and ``submit`` are the
    base class's; each member tokenises and buckets on its own (members with byte-identical n-gram
    halves share one copy). Loading checks that the members
    have the same label lists and, for a directory, that their weights are still those it was
    written with.
    """

    def __init__(self, model_dir: str | Path | None, backend: Backend = "torch", *,
                 members: Sequence[str | Path] = (), **options: Any) -> None:
        if model_dir is None and len(members) < 2:
            raise ModelError(f"an ensemble needs an ensemble directory or at least two members, got {list(members)}")
        super().__init__(model_dir if model_dir is not None else Path(members[0]), backend, **options)
        self.given = [Path(m) for m in members]
        self.from_dir = model_dir is not None
        self.members: list[InferenceEngine] = []

    def load(self) -> EnsembleEngine:
        """Load every member (once) and check them; :class:`ModelError` with one clear line if unusable."""
        with self._lock:
            if self._state is None:
                ensemble = read_ensemble(self.model_dir) if self.from_dir else None
                paths = ensemble.paths(self.model_dir) if ensemble else self.given
                specs = member_specs(paths)
                versions = [s.version for s in specs]
                if ensemble and list(ensemble.versions) != versions:
                    changed = [str(p) for p, a, b in zip(paths, ensemble.versions, versions, strict=True) if a != b]
                    raise ModelError(
                        f"members {changed} of ensemble {self.model_dir} have other weights than when it was "
                        f"written (retrained or replaced); check them, then {ENSEMBLE_HINT}"
                    )
                ngrams: dict[str, Any] = {}  # members with byte-identical n-gram halves share one
                members = [self._member(p, ngrams) for p in paths]
                for member in members:
                    member.load()
                combined = hashlib.sha256("\n".join(versions).encode("utf-8")).hexdigest()
                name = ensemble.name if ensemble else " + ".join(versions)
                spec = replace(specs[0], name=name, weights_sha256=combined, ngram_weight=0.0)
                self.members = members
                self._state = (spec, None, members[0]._loaded()[2])
                log.info("ensemble %s ready: %d members on %s", name, len(members), members[0].runner_name)
        return self

    def _member(self, path: Path, ngrams: dict[str, Any]) -> InferenceEngine:
        return InferenceEngine(path, self.backend, self.max_batch, 0.0, self.max_length, self.threads,
                               on_batch=self.on_batch, pool=self.pool, ngrams=ngrams)

    @property
    def version(self) -> str:
        """The ensemble's name and a hash of its members' versions (or the members' versions joined)."""
        spec = self._loaded()[0]
        return spec.version if self.from_dir else spec.name

    @property
    def member_versions(self) -> list[str]:
        """``name@hash12`` of each member, in order."""
        self._loaded()
        return [m.version for m in self.members]

    def probabilities(
        self, texts: Sequence[str], ngram_cache: dict[int, Any] | None = None
    ) -> tuple[np.ndarray, ...]:
        """The mean over the members of each head's probabilities, in input order.

        Each member's probabilities are its network's averaged with its n-gram half, as a member
        alone gives them; an n-gram half that several members share is computed once per call.
        """
        self._loaded()
        cache = {} if ngram_cache is None else ngram_cache
        outputs = [member.probabilities(texts, cache) for member in self.members]
        return tuple(np.mean([out[head] for out in outputs], axis=0) for head in range(len(outputs[0])))


def open_engine(model_dir: str | Path | Sequence[str | Path], backend: Backend = "torch",
                **options: Any) -> InferenceEngine:
    """The engine for a model directory, an ensemble directory, or a list of model directories.

    Constructs only (reads nothing but whether ``ensemble.json`` exists); ``options`` are those of
    :class:`~nlp.engine.InferenceEngine`.
    """
    if not isinstance(model_dir, str | Path):
        dirs = list(model_dir)
        if len(dirs) != 1:
            return EnsembleEngine(None, backend, members=dirs, **options)
        model_dir = dirs[0]
    if is_ensemble(model_dir):
        return EnsembleEngine(model_dir, backend, **options)
    return InferenceEngine(model_dir, backend, **options)


def member_dirs(model_dir: str | Path) -> list[Path]:
    """The member directories of an ensemble directory, or ``[model_dir]`` for a model directory."""
    path = Path(model_dir)
    return read_ensemble(path).paths(path) if is_ensemble(path) else [path]
