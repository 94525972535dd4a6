"""Row layouts of a batch: one right-padded row per sample, or several samples packed per row.

A packed row concatenates samples; each sample's ``position_ids`` restart at 0. The backbone
receives no 2-D padding mask, only those position ids, and transformers (>= 5) derives the
attention from them: a block-diagonal causal mask for SDPA / eager, and the variable-length
FlashAttention kernel when the packed rows are flattened into one (see
``unigen.module.backbone_inputs``). Trailing padding is its own segment (positions
restarting at 0): causal attention means it never influences a real token, and its labels are ignored.

Labels are aligned with positions and ``sample_index`` maps each token to its weighted part (a
sample, or one image turn of a multi-image sample: :meth:`Example.parts`), so the loss
heads and per-part weights work on packed batches unchanged. ``unigen.data.batch.collate`` turns
these rows into a :class:`~unigen.data.batch.Batch`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from unigen.data.sequence import Example
from unigen.losses import IGNORE


class Rows(NamedTuple):
    """The (R, T) token tensors of a batch (see :class:`unigen.data.batch.Batch` for each field)."""

    input_ids: torch.Tensor
    image_mask: torch.Tensor
    text_labels: torch.Tensor
    image_labels: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    sample_index: torch.Tensor
    image_blocks: torch.Tensor
    image_values: torch.Tensor


def part_offsets(examples: list[Example]) -> list[int]:
    """Index of each example's first weighted part in the batch (parts are numbered in example order)."""
    counts = [len(e.parts) for e in examples]
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()


def part_index(example: Example, offset: int) -> np.ndarray:
    """(len,) the batch index of the weighted part each label position of ``example`` belongs to."""
    starts = np.array([start for start, _ in example.parts])
    return offset + np.searchsorted(starts, np.arange(len(example.input_ids)), side="right") - 1


def padded_part_index(examples: list[Example], length: int) -> torch.Tensor:
    """(S, length) part index of every position of right-padded rows (padding: the row's last part)."""
    if all(len(e.parts) == 1 for e in examples):  # one part per sample: the row index
        return torch.arange(len(examples))[:, None].expand(len(examples), length).clone()
    return torch.from_numpy(np.array([np.pad(part_index(e, offset), (0, length - len(e.input_ids)), mode="edge")
                                      for e, offset in zip(examples, part_offsets(examples))], dtype=np.int64))


def image_values(examples: list[Example]) -> torch.Tensor:
    """(M, C) the continuous image payloads of ``examples`` in order ((0,) when they hold image ids)."""
    values = [e.image_values for e in examples if e.image_values is not None]
    return torch.from_numpy(np.concatenate(values)) if values else torch.zeros(0)


def row_blocks(examples: list[Example]) -> list[list[int]]:
    """Each example's bidirectional-block numbers, renumbered after the blocks of the examples
    before it in the same row (so a row's blocks stay distinct)."""
    out, seen = [], 0
    for e in examples:
        out.append([b + seen if b else 0 for b in e.blocks])
        seen += max(e.blocks, default=0)
    return out


def pad_rows(examples: list[Example], pad_id: int) -> Rows:
    """One right-padded row per sample (its padding belongs to its last part)."""
    length = max(len(e.input_ids) for e in examples)

    def padded(field: str, fill: int | bool, dtype: type) -> torch.Tensor:
        rows = [getattr(e, field) for e in examples]  # numpy reads nested lists ~4x faster than torch
        return torch.from_numpy(np.array([row + [fill] * (length - len(row)) for row in rows], dtype=dtype))

    lengths = torch.tensor([len(e.input_ids) for e in examples])
    attention_mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    positions = [np.pad(e.positions, (0, length - len(e.positions)), mode="edge") for e in examples]
    return Rows(
        input_ids=padded("input_ids", pad_id, np.int64),
        image_mask=padded("image_mask", False, np.bool_),
        text_labels=padded("text_labels", IGNORE, np.int64),
        image_labels=padded("image_labels", IGNORE, np.int64),
        attention_mask=attention_mask,
        position_ids=torch.from_numpy(np.array(positions, dtype=np.int64)),
        sample_index=padded_part_index(examples, length),
        image_blocks=padded("blocks", 0, np.int64),
        image_values=image_values(examples),
    )


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


def pack_rows(examples: list[Example], max_len: int, pad_id: int, pad_to_multiple_of: int = 8) -> Rows:
    """Pack ``examples`` into rows of at most ``max_len`` tokens (``sample_index`` keeps their order).

    The row length is the longest row, rounded up to ``pad_to_multiple_of``. ``attention_mask``
    marks real tokens (for counting); the backbone does not get it.
    """
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
    image_blocks = torch.zeros(shape, dtype=torch.long)
    offsets = part_offsets(examples)
    for r, row in enumerate(rows):
        start = 0
        for i, blocks in zip(row, row_blocks([examples[i] for i in row])):
            e, end = examples[i], start + lengths[i]
            input_ids[r, start:end] = torch.tensor(e.input_ids)
            image_mask[r, start:end] = torch.tensor(e.image_mask)
            text_labels[r, start:end] = torch.tensor(e.text_labels)
            image_labels[r, start:end] = torch.tensor(e.image_labels)
            position_ids[r, start:end] = torch.tensor(e.positions)
            image_blocks[r, start:end] = torch.tensor(blocks)
            if len(e.parts) == 1:
                sample_index[r, start:] = offsets[i]  # trailing padding belongs to the row's last part
            else:
                parts = torch.from_numpy(part_index(e, offsets[i]))
                sample_index[r, start:end] = parts
                sample_index[r, end:] = parts[-1]
            start = end
        attention_mask[r, :start] = 1
        position_ids[r, start:] = torch.arange(width - start)
    values = image_values([examples[i] for row in rows for i in row])  # row-major, as image_mask orders them
    return Rows(input_ids, image_mask, text_labels, image_labels, attention_mask, position_ids, sample_index,
                image_blocks, values)
