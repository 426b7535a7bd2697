"""The optimiser: encoder, heads and word embeddings at their own learning rates, with optional
layer-wise learning-rate decay over the encoder's depth (ULMFiT's discriminative fine-tuning; the
ELECTRA and DeBERTa recipes use 0.8-0.9: lower layers hold general features and move less)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, cast

import torch
from torch import nn

from finsentinel.errors import ConfigError
from nlp.model import MultiTaskModel
from training.args import TrainingArgs
from training.row_embeddings import RowOffsetEmbedding

# "encoder.layer.3." (BERT, RoBERTa, XLM-R, e5), "transformer.layer.3." (DistilBERT), "layers.3." (others)
_LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def depth(name: str, n_layers: int) -> int:
    """Depth of an encoder parameter: 0 for the embeddings, i + 1 for layer i, ``n_layers`` above them."""
    if name.startswith("embeddings.") or ".embeddings." in name:
        return 0
    match = _LAYER.search(name)
    return int(match.group(1)) + 1 if match else n_layers


def build_optimizer(model: MultiTaskModel, args: TrainingArgs) -> torch.optim.Optimizer:
    """AdamW over the trainable weights: the encoder at ``lr`` (times ``layer_lr_decay`` per layer below
    the top one), the heads at ``head_lr``, the word embeddings at ``embedding_lr`` when trained."""
    table = model.encoder.get_input_embeddings()
    own = {id(p) for p in table.parameters()}
    n_layers = _layer_count(model, args.layer_lr_decay)
    by_lr: dict[float, list[tuple[str, nn.Parameter]]] = {}
    for name, param in model.encoder.named_parameters():
        if id(param) not in own:
            scale = args.layer_lr_decay ** max(0, n_layers - depth(name, n_layers))
            by_lr.setdefault(args.lr * scale, []).append((name, param))
    heads = [(n, p) for n, p in model.named_parameters() if not n.startswith("encoder.")]
    by_lr.setdefault(args.head_lr or args.lr, []).extend(heads)
    groups = [group for lr, params in by_lr.items() for group in _decay_groups(params, lr, args.weight_decay)]
    if isinstance(table, RowOffsetEmbedding):
        trainable = [table.offsets]
    else:
        weight = cast(nn.Parameter, table.weight)
        weight.requires_grad_(args.train_embeddings)
        trainable = [weight] if args.train_embeddings else []
    if trainable:  # no weight decay: a row that no text uses must not move (see training.row_embeddings)
        groups.append({"params": trainable, "weight_decay": 0.0, "lr": args.embedding_lr})
    return torch.optim.AdamW(groups, lr=args.lr)


def _layer_count(model: MultiTaskModel, decay: float) -> int:
    """The encoder's number of layers; a clear error where a decay is asked for but cannot be applied."""
    n_layers = int(getattr(model.encoder.config, "num_hidden_layers", 0) or 0)
    if decay >= 1.0:
        return n_layers
    missing = [] if n_layers >= 1 else ["config.num_hidden_layers"]
    if not any(_LAYER.search(n) for n, _ in model.encoder.named_parameters()):
        missing.append("parameters named like 'layer.N.'")
    if missing:
        raise ConfigError(
            f"layer_lr_decay {decay} needs an encoder with numbered layers (config.num_hidden_layers and "
            f"parameters named like 'layer.N.'); {type(model.encoder).__name__} has no "
            f"{' and no '.join(missing)}: drop --layer-lr-decay for this base model"
        )
    return n_layers


def _decay_groups(params: Iterable[tuple[str, nn.Parameter]], lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay for matrices; none for biases and layer norms."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in params:
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay, "lr": lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": lr},
    ]
