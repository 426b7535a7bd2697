"""The multi-task classifier and its self-describing, safetensors-only directory format.

One shared transformer encoder (any HF BERT-family checkpoint) feeds two linear heads, topic and
sentiment, over mean-pooled (or [CLS]) token states, plus an optional multi-label risk-event head
(sigmoid per event type). A model directory holds:

* ``finsentinel.json``: format name + version, label maps, pooling, max_length, base model, weights hash;
* ``config.json`` (the encoder's HF config) and ``model.safetensors`` (encoder weights, HF key names,
  so ``AutoModel.from_pretrained(dir)`` also reads the fine-tuned encoder);
* ``heads.safetensors``: the heads;
* the tokenizer files (``tokenizer.json``, ``tokenizer_config.json``);
* ``MODEL_CARD.md`` + ``model_card.json``: data, training arguments, validation metrics, code version.

Weights are read with safetensors only, never ``torch.load``/pickle.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from finsentinel.errors import ModelError
from finsentinel.schema import SENTIMENTS

log = logging.getLogger(__name__)

FORMAT_NAME = "finsentinel-multitask-classifier"
FORMAT_VERSION = 1
SPEC_FILE = "finsentinel.json"
CONFIG_FILE = "config.json"
ENCODER_FILE = "model.safetensors"
HEADS_FILE = "heads.safetensors"
NGRAM_FILES = ("ngram.json", "ngram.safetensors")
CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"
ENSEMBLE_FILE = "ensemble.json"  # an ensemble directory (nlp.ensemble) holds this instead of SPEC_FILE
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")  # either one makes a loadable tokenizer
REBUILD_HINT = "run `finsentinel seed-model` (or `make demo`) to build it"
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

Pooling = Literal["mean", "cls"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What ``finsentinel.json`` says about a model directory."""

    name: str
    topics: tuple[str, ...]
    sentiments: tuple[str, ...] = SENTIMENTS
    pooling: Pooling = "mean"
    max_length: int = 64
    base_model: str = ""
    weights_sha256: str = ""
    events: tuple[str, ...] = ()
    """Risk-event types of the optional multi-label head (empty: no such head)."""
    ngram_weight: float = 0.0
    """Weight of the n-gram model (:mod:`nlp.ngram`) in the averaged probabilities (0: none)."""
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    @property
    def version(self) -> str:
        """``name@hash12``: how a model directory is named in outputs, logs and ensembles."""
        return f"{self.name}@{self.weights_sha256[:12]}"

    def to_json(self) -> str:
        """Pretty JSON for ``finsentinel.json``."""
        data = asdict(self)
        data["topics"], data["sentiments"] = list(self.topics), list(self.sentiments)
        data["events"] = list(self.events)
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> ModelSpec:
        """Read and check ``finsentinel.json``; raise :class:`ModelError` naming the problem."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path} is not readable JSON ({exc}); {REBUILD_HINT}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise ModelError(
                f"{path} does not describe a FinSentinel classifier (format "
                f"{data.get('format') if isinstance(data, dict) else None!r}); {REBUILD_HINT}"
            )
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelError(
                f"model in {path.parent} has format version {data.get('format_version')!r}, this "
                f"release reads version {FORMAT_VERSION}: it comes from another release; {REBUILD_HINT}"
            )
        try:
            spec = cls(
                **{
                    **data,
                    "topics": tuple(data["topics"]),
                    "sentiments": tuple(data["sentiments"]),
                    "events": tuple(data.get("events", ())),
                }
            )
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{path} is missing or has unexpected fields ({exc}); {REBUILD_HINT}") from exc
        if not spec.topics or tuple(spec.sentiments) != SENTIMENTS or spec.pooling not in ("mean", "cls"):
            raise ModelError(
                f"{path}: expected topics, sentiments {list(SENTIMENTS)} and pooling mean|cls, got "
                f"{list(spec.topics)}, {list(spec.sentiments)}, {spec.pooling!r}; {REBUILD_HINT}"
            )
        return spec


HEAD_NAMES = ("topic_head", "sentiment_head", "event_head")


class MultiTaskModel(nn.Module):
    """A shared encoder with a topic head, a sentiment head and an optional risk-event head."""

    def __init__(
        self,
        encoder: PreTrainedModel,
        n_topics: int,
        n_sentiments: int = len(SENTIMENTS),
        pooling: Pooling = "mean",
        dropout: float = 0.1,
        n_events: int = 0,
    ) -> None:
        super().__init__()
        hidden = int(encoder.config.hidden_size)
        self.encoder = encoder
        self.pooling: Pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.topic_head = nn.Linear(hidden, n_topics)
        self.sentiment_head = nn.Linear(hidden, n_sentiments)
        self.event_head = nn.Linear(hidden, n_events) if n_events else None

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Topic logits, sentiment logits and (with an event head) event logits for a tokenised batch."""
        inputs = {k: batch[k] for k in ENCODER_INPUTS if k in batch}
        states = self.encoder(**inputs).last_hidden_state
        if self.pooling == "cls":
            pooled = states[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        pooled = self.dropout(pooled)
        if self.event_head is None:
            return self.topic_head(pooled), self.sentiment_head(pooled)
        return self.topic_head(pooled), self.sentiment_head(pooled), self.event_head(pooled)

    def heads_state(self) -> dict[str, torch.Tensor]:
        """The heads' weights, keyed as in ``heads.safetensors``."""
        return {
            f"{name}.{k}": v
            for name in HEAD_NAMES
            if getattr(self, name) is not None
            for k, v in getattr(self, name).state_dict().items()
        }


@dataclass(frozen=True)
class LoadedModel:
    """A model read back from its directory, ready for inference."""

    model: MultiTaskModel
    tokenizer: PreTrainedTokenizerBase
    spec: ModelSpec
    path: Path

    @property
    def version(self) -> str:
        """Model name plus a short hash of its weights, e.g. ``finsentinel-seed@3f2a9c1b7d0e``."""
        return self.spec.version


def weights_sha256(model_dir: Path) -> str:
    """SHA-256 over the encoder and head weight files, in that order, then the n-gram files if present."""
    digest = hashlib.sha256()
    extra = tuple(n for n in NGRAM_FILES if (model_dir / n).is_file())
    for name in (ENCODER_FILE, HEADS_FILE, *extra):
        with (model_dir / name).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def save_model(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    spec: ModelSpec,
    out_dir: Path,
    card: tuple[Mapping[str, Any], str] | None = None,
    ngram: Any = None,
) -> ModelSpec:
    """Write ``model`` into the (new or empty) directory ``out_dir``; return the spec with the weights hash.

    ``card`` is ``(model_card.json content, MODEL_CARD.md text)``; ``ngram`` an
    :class:`nlp.ngram.NgramModel` to store beside the network (``spec.ngram_weight`` > 0). Callers that replace a live model
    write into a temporary directory and rename it into place (see :func:`training.train.train_multitask`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_state = {k: v.detach().contiguous().cpu() for k, v in model.encoder.state_dict().items()}
    save_file(encoder_state, str(out_dir / ENCODER_FILE), metadata={"format": "pt"})
    heads = {k: v.detach().contiguous().cpu() for k, v in model.heads_state().items()}
    save_file(heads, str(out_dir / HEADS_FILE), metadata={"format": "pt"})
    if ngram is not None:
        ngram.save(out_dir)
    model.encoder.config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    for name in (ENCODER_FILE, HEADS_FILE):
        (out_dir / name).chmod(0o644)  # safetensors writes 0600; a model directory is meant to be shared
    final = ModelSpec(**{**asdict(spec), "weights_sha256": weights_sha256(out_dir)})
    (out_dir / SPEC_FILE).write_text(final.to_json(), encoding="utf-8")
    if card is not None:
        card_json, card_md = card
        (out_dir / CARD_JSON).write_text(
            json.dumps(card_json, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        (out_dir / CARD_MD).write_text(card_md, encoding="utf-8")
    return final


def check_model_dir(model_dir: Path) -> ModelSpec:
    """Check that ``model_dir`` is a complete model directory of this release; return its spec."""
    if not model_dir.is_dir():
        raise ModelError(
            f"model directory {model_dir} does not exist; {REBUILD_HINT}, "
            "or set nlp.model_dir to a trained model"
        )
    if (model_dir / ENSEMBLE_FILE).is_file():
        raise ModelError(
            f"{model_dir} is an ensemble of model directories ({ENSEMBLE_FILE}), and this step works on "
            "one model directory: run it on each member listed there"
        )
    if not (model_dir / SPEC_FILE).is_file():
        if (model_dir / CONFIG_FILE).is_file():
            kind = ("a plain Hugging Face checkpoint, not a FinSentinel classifier; "
                    "use it as nlp.base_model to fine-tune from it")
        else:
            kind = f"not a model directory (no {CONFIG_FILE} either); check the path"
        raise ModelError(f"{model_dir} has no {SPEC_FILE}: it is {kind}, or {REBUILD_HINT}")
    spec = ModelSpec.from_file(model_dir / SPEC_FILE)
    needed = (CONFIG_FILE, ENCODER_FILE, HEADS_FILE) + (NGRAM_FILES if spec.ngram_weight > 0 else ())
    missing = [n for n in needed if not (model_dir / n).is_file()]
    if not any((model_dir / n).is_file() for n in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    if missing:
        raise ModelError(
            f"model directory {model_dir} is incomplete, missing {', '.join(missing)}; {REBUILD_HINT}"
        )
    return spec


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; :class:`ModelError` naming the file when it cannot be read."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{path} is not a readable safetensors file ({exc}); the model directory is "
            f"corrupt: delete it and {REBUILD_HINT}"
        ) from exc


def load_model(model_dir: str | Path) -> LoadedModel:
    """Read a model directory written by :func:`save_model`; raise :class:`ModelError` with one clear line."""
    path = Path(model_dir)
    spec = check_model_dir(path)
    encoder_state, heads_state = read_weights(path / ENCODER_FILE), read_weights(path / HEADS_FILE)
    if spec.weights_sha256 and weights_sha256(path) != spec.weights_sha256:
        raise ModelError(
            f"weights in {path} do not match the hash in {SPEC_FILE}: the files are corrupt or "
            f"were replaced; delete the directory and {REBUILD_HINT}"
        )
    try:
        config = AutoConfig.from_pretrained(path)
        encoder = AutoModel.from_config(config)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot read the config or tokenizer in {path} ({exc}); {REBUILD_HINT}") from exc
    model = MultiTaskModel(
        encoder, len(spec.topics), len(spec.sentiments), spec.pooling, n_events=len(spec.events)
    )
    try:
        model.encoder.load_state_dict(encoder_state, strict=True)
        for name in HEAD_NAMES:
            head = getattr(model, name)
            weights = {k.split(".", 1)[1]: v for k, v in heads_state.items() if k.startswith(name + ".")}
            if head is not None:
                head.load_state_dict(weights, strict=True)
            elif weights:
                raise RuntimeError(f"{HEADS_FILE} holds an {name} that {SPEC_FILE} does not declare")
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(
            f"weights in {path} do not fit its config.json/{SPEC_FILE} ({first}); {REBUILD_HINT}"
        ) from exc
    n_embeddings = int(model.encoder.config.vocab_size)
    if len(tokenizer) > n_embeddings:
        raise ModelError(
            f"tokenizer in {path} has {len(tokenizer)} tokens but the encoder only "
            f"{n_embeddings} embeddings; {REBUILD_HINT}"
        )
    model.eval()
    log.info("loaded model %s from %s (%d topics)", spec.name, path, len(spec.topics))
    return LoadedModel(model=model, tokenizer=tokenizer, spec=spec, path=path)


def label_index(labels: Sequence[str]) -> dict[str, int]:
    """``{label: position}`` for a label list."""
    return {label: i for i, label in enumerate(labels)}
