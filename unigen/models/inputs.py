"""What the backbone receives for a training batch, padded or packed."""

from __future__ import annotations

import torch

from unigen.data.batch import Batch
from unigen.models.unified import UnifiedModel


def backbone_inputs(
    embeds: torch.Tensor, batch: Batch, net: UnifiedModel
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(inputs_embeds, attention_mask, position_ids) for the backbone, packed or padded.

    Packed batches pass no 2-D mask (transformers builds the block-diagonal mask from the position
    ids); for FlashAttention they are flattened into one row, which selects its varlen kernel.
    Reshape the hidden states back with ``hidden.view(*batch.input_ids.shape, -1)``.
    """
    if not batch.packed:
        return embeds, batch.attention_mask, batch.position_ids
    positions = batch.position_ids
    if net.attn_implementation.startswith("flash"):
        return embeds.reshape(1, -1, embeds.shape[-1]), None, positions.reshape(1, -1)
    return embeds, None, positions
