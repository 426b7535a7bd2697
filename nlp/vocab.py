"""Vocabulary extension: teach an English WordPiece encoder the Chinese characters of its training data.

BERT-family tokenizers isolate every CJK ideograph (and punctuation mark) as a word of its own, so
an English vocabulary turns nearly all of a Chinese headline into ``[UNK]``. :func:`extend_vocab`
adds each such single-character word that the vocabulary lacks to the WordPiece vocabulary itself
(not as "added tokens", so the tokenizer behaves exactly as if it had shipped with them), grows the
embedding matrix, and initialises the new rows near the mean of the existing embeddings, with
seeded noise so that the characters start distinguishable; fine-tuning then learns them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from tokenizers.models import WordPiece
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from finsentinel.errors import ModelError

log = logging.getLogger(__name__)

NOISE_SCALE = 0.5
"""Noise std as a fraction of the per-dimension std of the existing embeddings."""


def unknown_characters(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> list[str]:
    """Single-character words of ``texts`` (after the tokenizer's normalisation) that are not in its vocab."""
    backend = _backend(tokenizer)
    vocab = backend.get_vocab(with_added_tokens=True)
    found: set[str] = set()
    for text in texts:
        normalised = backend.normalizer.normalize_str(text) if backend.normalizer is not None else text
        words = (
            backend.pre_tokenizer.pre_tokenize_str(normalised)
            if backend.pre_tokenizer is not None
            else [(w, (0, 0)) for w in normalised.split()]
        )
        found.update(w for w, _ in words if len(w) == 1 and not w.isspace() and w not in vocab)
    return sorted(found)


def extend_vocab(
    tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, texts: Iterable[str], seed: int = 0
) -> int:
    """Add the unknown characters of ``texts`` to the WordPiece vocab and the embeddings; return how many.

    ``tokenizer`` and ``model`` are changed in place; ``model.config.vocab_size`` follows.
    Raises :class:`ModelError` for a tokenizer that is not WordPiece (e.g. byte-level BPE, which has
    no unknown characters to add).
    """
    new_chars = unknown_characters(tokenizer, texts)
    if not new_chars:
        return 0
    backend = _backend(tokenizer)
    old_model = backend.model
    vocab = backend.get_vocab(with_added_tokens=False)
    next_id = max(backend.get_vocab(with_added_tokens=True).values()) + 1
    for offset, char in enumerate(new_chars):
        vocab[char] = next_id + offset
    backend.model = WordPiece(
        vocab,
        unk_token=old_model.unk_token,
        continuing_subword_prefix=old_model.continuing_subword_prefix,
        max_input_chars_per_word=old_model.max_input_chars_per_word,
    )
    _grow_embeddings(model, next_id + len(new_chars), seed)
    log.info("added %d characters to the vocabulary (now %d tokens)", len(new_chars), len(tokenizer))
    return len(new_chars)


def _backend(tokenizer: PreTrainedTokenizerBase) -> Any:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not isinstance(backend.model, WordPiece):
        kind = type(backend.model).__name__ if backend is not None else type(tokenizer).__name__
        raise ModelError(
            f"vocabulary extension needs a fast WordPiece (BERT-family) tokenizer, got {kind}; "
            "use a BERT-family base model, or one whose vocabulary already covers Chinese"
        )
    return backend


def _embedding_weight(model: PreTrainedModel) -> torch.Tensor:
    embeddings = model.get_input_embeddings()
    if not isinstance(embeddings, torch.nn.Embedding):
        raise ModelError(
            f"vocabulary extension needs an nn.Embedding input layer, got {type(embeddings).__name__}"
        )
    return embeddings.weight


def _grow_embeddings(model: PreTrainedModel, size: int, seed: int) -> None:
    old = _embedding_weight(model).detach()
    n_old = old.shape[0]
    model.resize_token_embeddings(size, mean_resizing=False)
    weight = _embedding_weight(model)
    generator = torch.Generator().manual_seed(seed)
    mean, std = old.mean(0), old.std(0)
    noise = torch.randn((size - n_old, old.shape[1]), generator=generator, dtype=old.dtype)
    with torch.no_grad():
        weight[n_old:] = mean + noise * std * NOISE_SCALE
