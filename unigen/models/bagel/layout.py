"""Sequence layout of BAGEL rows: text splits, latent blocks, rotary positions and the block mask.

A sample is a list of splits, each with an attention mode:
- ``causal`` (text): each token sees the earlier splits and the earlier tokens of its own;
- ``full`` (a clean latent block): bidirectional inside, sees the earlier splits;
- ``noise`` (a noised latent block being denoised): bidirectional inside, sees the earlier
  splits, and no other split sees it (later text must not read the noise).
A latent block is ``<|vision_start|>``, ``h * w`` latent tokens (expert 1), ``<|vision_end|>``;
all of its tokens share one rotary position (the next text position); the position advances
after a clean block but not after a noised one (as the official packer does). Rows hold one or
more samples back to back (block diagonal, positions restarting per sample), padded to a common
length; padding attends to itself only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from unigen.models.bagel.embeddings import latent_position_ids

MODES = ("causal", "full", "noise")
IGNORE = -100


@dataclass
class SampleLayout:
    """One sample's tokens: ids (0 at latent slots), expert index, rotary position, CE label."""

    ids: list[int] = field(default_factory=list)
    expert: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    splits: list[tuple[int, str]] = field(default_factory=list)
    latent_positions: list[torch.Tensor] = field(default_factory=list)
    grids: list[tuple[int, int]] = field(default_factory=list)
    next_position: int = 0

    def text(self, ids: list[int], labels: list[int] | None = None) -> "SampleLayout":
        """Append a causal text split; ``labels`` (same length, ``-100`` = no loss) are the CE targets."""
        if labels is not None and len(labels) != len(ids):
            raise ValueError(f"text split: {len(labels)} labels for {len(ids)} ids")
        self.ids += ids
        self.expert += [0] * len(ids)
        self.positions += range(self.next_position, self.next_position + len(ids))
        self.labels += labels if labels is not None else [IGNORE] * len(ids)
        self.splits.append((len(ids), "causal"))
        self.next_position += len(ids)
        return self

    def latent_block(self, h: int, w: int, start: int, end: int, max_side: int, noised: bool = True) -> "SampleLayout":
        """Append ``start``, an ``h x w`` latent block and ``end`` as one ``noise`` (or ``full``) split."""
        n = h * w
        self.ids += [start] + [0] * n + [end]
        self.expert += [0] + [1] * n + [0]
        self.positions += [self.next_position] * (n + 2)
        self.labels += [IGNORE] * (n + 2)
        self.splits.append((n + 2, "noise" if noised else "full"))
        self.latent_positions.append(latent_position_ids(h, w, max_side))
        self.grids.append((h, w))
        self.next_position += 0 if noised else 1
        return self


def split_mask(splits: list[tuple[int, str]]) -> torch.Tensor:
    """(L, L) bool attention mask of one sample's splits (True: query row may read key column)."""
    n = sum(length for length, _ in splits)
    mask = torch.zeros(n, n, dtype=torch.bool)
    start = 0
    for length, mode in splits:
        if mode not in MODES:
            raise ValueError(f"attention mode '{mode}' is not one of {MODES}")
        end = start + length
        mask[start:end, :start] = True
        block = torch.ones(length, length, dtype=torch.bool)
        mask[start:end, start:end] = block.tril() if mode == "causal" else block
        start = end
    start = 0
    for length, mode in splits:
        end = start + length
        if mode == "noise":
            mask[:, start:end] = False
            mask[start:end, start:end] = True
        start = end
    return mask


@dataclass
class PackedBatch:
    """Padded rows of packed samples. Latent-token tensors are in row-major order of ``gen``."""

    input_ids: torch.Tensor  # (B, L) long, 0 at latent slots and padding
    gen: torch.Tensor  # (B, L) bool: expert 1 (latent tokens)
    position_ids: torch.Tensor  # (B, L) long rotary positions
    labels: torch.Tensor  # (B, L) long CE targets, -100 = none
    mask: torch.Tensor  # (B, L, L) bool block attention mask
    latent_position_ids: torch.Tensor  # (N,) long, N = gen.sum()
    block_index: torch.Tensor  # (N,) long: which latent block (in order) each latent token is in
    grids: list[tuple[int, int]]  # (h, w) of every latent block in order

    @property
    def num_latent_tokens(self) -> int:
        return int(self.gen.sum())


def pack(rows: list[list[SampleLayout]], pad_id: int = 0) -> PackedBatch:
    """Pack each row's samples back to back and pad rows to the longest (see module docstring)."""
    length = max(sum(len(s.ids) for s in row) for row in rows)
    b = len(rows)
    ids = torch.full((b, length), pad_id, dtype=torch.long)
    gen = torch.zeros(b, length, dtype=torch.bool)
    positions = torch.zeros(b, length, dtype=torch.long)
    labels = torch.full((b, length), IGNORE, dtype=torch.long)
    mask = torch.eye(length, dtype=torch.bool).repeat(b, 1, 1)
    latent_ids, grids = [], []
    for r, row in enumerate(rows):
        start = 0
        for sample in row:
            end = start + len(sample.ids)
            ids[r, start:end] = torch.tensor(sample.ids)
            gen[r, start:end] = torch.tensor(sample.expert, dtype=torch.bool)
            positions[r, start:end] = torch.tensor(sample.positions)
            labels[r, start:end] = torch.tensor(sample.labels)
            mask[r, start:end, start:end] = split_mask(sample.splits)
            latent_ids += sample.latent_positions
            grids += sample.grids
            start = end
    sizes = [h * w for h, w in grids]
    return PackedBatch(ids, gen, positions, labels, mask,
                       torch.cat(latent_ids) if latent_ids else torch.zeros(0, dtype=torch.long),
                       torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes, dtype=torch.long)),
                       grids)
