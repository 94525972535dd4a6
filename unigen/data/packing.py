"""Sequence packing: several training sequences per row, with no attention across them.

A packed row concatenates samples; each sample's ``position_ids`` restart at 0. The backbone
receives no 2-D padding mask, only those position ids, and transformers (>= 5) derives the
attention from them: a block-diagonal causal mask for SDPA / eager, and the variable-length
FlashAttention kernel when the packed rows are flattened into one (see :func:`backbone_inputs`).
Trailing padding is its own segment (positions restarting at 0): causal attention means it never
influences a real token, and its labels are ignored.

Labels are aligned with positions and ``sample_index`` maps each token to its sample, so the loss
heads and per-sample weights work on packed batches unchanged.
"""

from __future__ import annotations

import torch

from unigen.data.sequence import Example
from unigen.losses import IGNORE
from unigen.models.unified import UnifiedModel


def plan_rows(lengths: list[int], max_len: int) -> list[list[int]]:
    """First-fit-decreasing bin packing: lists of sample indices whose lengths sum to <= ``max_len``."""
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        slot = next((r for r, room in enumerate(free) if room >= lengths[i]), None)
        if slot is None:
            rows.append([i])
            free.append(max_len - lengths[i])
        else:
            rows[slot].append(i)
            free[slot] -= lengths[i]
    return rows


def pack(examples: list[Example], max_len: int, pad_id: int, pad_to_multiple_of: int = 8) -> dict:
    """Pack ``examples`` into rows of at most ``max_len`` tokens; same keys as ``collate`` plus ``packed``.

    Per-sample fields (``text_weight``, ``image_weight``, ``rewards``, ``keys``, ``prompt_ids``)
    keep the order of ``examples``. The row length is the longest row, rounded up to
    ``pad_to_multiple_of``. ``attention_mask`` marks real tokens (for counting); the module must
    not hand it to the backbone (it checks ``batch["packed"]``).
    """
    if not examples:
        raise ValueError("pack() needs at least one example")
    lengths = [len(e.input_ids) for e in examples]
    too_long = [(e.key, n) for e, n in zip(examples, lengths) if n > max_len]
    if too_long:
        key, n = too_long[0]
        raise ValueError(f"sample '{key}' has {n} tokens > pack length {max_len} ({len(too_long)} such samples)")
    rows = plan_rows(lengths, max_len)
    width = max(sum(lengths[i] for i in row) for row in rows)
    width = min(max_len, -(-width // pad_to_multiple_of) * pad_to_multiple_of) if pad_to_multiple_of > 1 else width
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    image_mask = torch.zeros(shape, dtype=torch.bool)
    text_labels = torch.full(shape, IGNORE, dtype=torch.long)
    image_labels = torch.full(shape, IGNORE, dtype=torch.long)
    attention_mask = torch.zeros(shape, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    sample_index = torch.zeros(shape, dtype=torch.long)
    for r, row in enumerate(rows):
        start = 0
        for i in row:
            e, end = examples[i], start + lengths[i]
            input_ids[r, start:end] = torch.tensor(e.input_ids)
            image_mask[r, start:end] = torch.tensor(e.image_mask)
            text_labels[r, start:end] = torch.tensor(e.text_labels)
            image_labels[r, start:end] = torch.tensor(e.image_labels)
            position_ids[r, start:end] = torch.arange(lengths[i])
            sample_index[r, start:] = i  # trailing padding belongs to the row's last sample
            start = end
        attention_mask[r, :start] = 1
        position_ids[r, start:] = torch.arange(width - start)
    names = sorted({name for e in examples for name in e.rewards})
    n = len(examples)
    return {
        "input_ids": input_ids,
        "image_mask": image_mask,
        "text_labels": text_labels,
        "image_labels": image_labels,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "sample_index": sample_index,
        "text_weight": torch.ones(n),
        "image_weight": torch.ones(n),
        "rewards": {k: torch.tensor([e.rewards.get(k, float("nan")) for e in examples]) for k in names},
        "keys": [e.key for e in examples],
        "prompt_ids": [e.prompt_id for e in examples],
        "packed": True,
    }


def padding_fraction(batch: dict) -> float:
    """Share of the batch's token slots that hold padding."""
    mask = batch["attention_mask"]
    return 1.0 - float(mask.sum()) / mask.numel()


def backbone_inputs(
    embeds: torch.Tensor, batch: dict, net: UnifiedModel
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(inputs_embeds, attention_mask, position_ids) for the backbone, packed or padded.

    Packed batches pass no 2-D mask (transformers builds the block-diagonal mask from the position
    ids); for FlashAttention they are flattened into one row, which selects its varlen kernel.
    Reshape the hidden states back with ``hidden.view(batch["input_ids"].shape + (-1,))``.
    """
    if not batch.get("packed"):
        return embeds, batch["attention_mask"], batch.get("position_ids")
    positions = batch["position_ids"]
    if net.attn_implementation.startswith("flash"):
        return embeds.reshape(1, -1, embeds.shape[-1]), None, positions.reshape(1, -1)
    return embeds, None, positions
