"""Training only the word-embedding rows that the training texts use.

A multilingual vocabulary has 250k rows (96M weights for multilingual-e5-small); a training set
touches a few tens of thousands. Trained as a dense parameter, every step still builds a 250k-row
gradient, clips it and runs AdamW over it, which made a run 4x slower here. With AdamW and no weight
decay on the embeddings, a row whose gradient is always zero never moves, so training a table of
offsets for the used rows only is the same optimisation at a fraction of the work. torch's own
sparse gradients do not fit: AdamW rejects them and SparseAdam would need a second optimiser and
scheduler beside the checkpointed one; hence this small module.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class RowOffsetEmbedding(nn.Module):
    """A frozen embedding table plus a trainable offset per row in ``rows`` (zero at the start)."""

    slot: torch.Tensor
    """Per vocabulary row, its offset's index, or -1 for a row that stays as it is."""

    def __init__(self, base: nn.Embedding, rows: Iterable[int]) -> None:
        super().__init__()
        wanted = sorted({int(r) for r in rows} - {base.padding_idx})
        self.base = base
        self.base.weight.requires_grad_(False)
        slot = torch.full((base.num_embeddings,), -1, dtype=torch.long)
        slot[torch.tensor(wanted, dtype=torch.long)] = torch.arange(len(wanted))
        self.register_buffer("slot", slot, persistent=True)
        self.offsets = nn.Parameter(torch.zeros(len(wanted), base.embedding_dim, dtype=base.weight.dtype))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        slots = self.slot[input_ids]
        used = (slots >= 0).unsqueeze(-1).to(self.offsets.dtype)
        return self.base(input_ids) + nn.functional.embedding(slots.clamp(min=0), self.offsets) * used

    def folded_weight(self) -> torch.Tensor:
        """Base rows with the offsets added (a new tensor; the module is unchanged)."""
        rows = (self.slot >= 0).nonzero().squeeze(-1)
        weight = self.base.weight.detach().clone()
        weight[rows] += self.offsets.detach()[self.slot[rows]]
        return weight


def attach(encoder: nn.Module, rows: Iterable[int]) -> RowOffsetEmbedding:
    """Replace ``encoder``'s word embeddings by a :class:`RowOffsetEmbedding` over ``rows``."""
    table = encoder.get_input_embeddings()  # type: ignore[operator]
    if not isinstance(table, nn.Embedding):
        raise TypeError(f"expected an nn.Embedding as input embeddings, got {type(table).__name__}")
    wrapped = RowOffsetEmbedding(table, rows)
    encoder.set_input_embeddings(wrapped)  # type: ignore[operator]
    return wrapped


def fold(encoder: nn.Module) -> None:
    """Write the offsets into the base table and put the plain embedding back (a no-op without offsets)."""
    table = encoder.get_input_embeddings()  # type: ignore[operator]
    if isinstance(table, RowOffsetEmbedding):
        weight = table.folded_weight()
        with torch.no_grad():
            table.base.weight.copy_(weight)
        table.base.weight.requires_grad_(True)
        encoder.set_input_embeddings(table.base)  # type: ignore[operator]
