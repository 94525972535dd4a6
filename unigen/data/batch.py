"""The training batch: :class:`Batch`, and :func:`collate`, the one function every DataModule builds it with.

A batch holds rows of tokens (R, T) and per-part fields (S,). A *part* is the unit a loss weight
applies to: a whole sample, or, for a multi-image (interleaved) sample, one of its image turns
(``Example.parts``; turn 0 = reasoning + first image, turn k = reflection k + redraw k,
the final EOS with the last turn). Single-image data has one part per sample, so S = samples.
Padded, each sample has its own row; packed (``unigen.data.packing``), several samples share a
row. ``sample_index`` maps each token to its part, so the loss heads and the per-part weights work
on both layouts unchanged.
Callbacks change a batch only through its methods (:meth:`Batch.set_weights`, :meth:`Batch.set_reward`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from unigen.data.packing import Rows, pack_rows, pad_rows
from unigen.data.sequence import Example
from unigen.losses import IGNORE

MODALITIES = ("text", "image")
TENSOR_FIELDS = Rows._fields + ("text_weight", "image_weight")
"""The tensor fields of :class:`Batch` besides ``rewards`` and ``window_tokens``."""


@dataclass
class Batch:
    """One micro-batch of training sequences (Lightning moves it with :meth:`to`)."""

    input_ids: torch.Tensor
    """(R, T) token ids; where ``image_mask`` is set, image codebook ids."""
    image_mask: torch.Tensor
    """(R, T) bool: positions holding image ids."""
    text_labels: torch.Tensor
    """(R, T) text id predicted at each position (the next token), ``IGNORE`` where unsupervised."""
    image_labels: torch.Tensor
    """(R, T) image id predicted at each position, ``IGNORE`` where unsupervised."""
    attention_mask: torch.Tensor
    """(R, T) 1 on real tokens, 0 on padding. Packed batches use it for counting only: the backbone
    gets no 2-D mask (``unigen.module.backbone_inputs``)."""
    position_ids: torch.Tensor
    """(R, T) positions; in packed rows they restart at 0 for every sample."""
    sample_index: torch.Tensor
    """(R, T) the part (sample, or image turn of a sample) whose weight the label at each position
    takes (index into the per-part fields)."""
    image_blocks: torch.Tensor
    """(R, T) 0 outside bidirectional image blocks, k > 0 inside a row's k-th one (a noised latent
    block: bidirectional inside, read by no other token; :func:`block_attention`)."""
    image_values: torch.Tensor
    """(M, C) float continuous image payload of the ``image_mask`` positions in row-major order
    (BAGEL's latent tokens); (0,) when the image payload is ids (in ``input_ids``)."""
    text_weight: torch.Tensor
    """(S,) per-part weight of the text loss; 1 unless a reward callback sets it."""
    image_weight: torch.Tensor
    """(S,) per-part weight of the image loss; 1 unless a reward callback sets it."""
    rewards: dict[str, torch.Tensor]
    """"<modality>/<reward name>" -> (S,) values, NaN where a part has none (a turn's own rewards:
    ``unigen.data.sequence.turn_rewards``)."""
    keys: list[str]
    """(S,) sample keys (``<prompt_id>_<sample_idx>``) of the parts (repeated for each turn of a sample)."""
    prompt_ids: list[str]
    """(S,) prompt ids (the groups of per-prompt weighting)."""
    turns: list[int]
    """(S,) the image turn of each part (0 for single-image samples)."""
    packed: bool = False
    """Several samples per row (see ``unigen.data.packing``)."""
    window_tokens: tuple[torch.Tensor, torch.Tensor] | None = None
    """(text, image) supervised tokens of this rank's gradient-accumulation window
    (``unigen.data.windows``); None: the batch's own counts."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Bad samples met by the loader since its previous batch, by reason (the DataModule takes them out)."""

    @property
    def num_samples(self) -> int:
        """Number of weighted parts S (= samples unless some sample has several image turns)."""
        return len(self.keys)

    @property
    def padding_fraction(self) -> float:
        """Share of the token slots that hold padding."""
        return 1.0 - float(self.attention_mask.sum()) / self.attention_mask.numel()

    def supervised_tokens(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(text, image) supervised-token counts of this batch."""
        return (self.text_labels != IGNORE).sum(), (self.image_labels != IGNORE).sum()

    def part_samples(self) -> torch.Tensor:
        """(S,) the sample each part belongs to (0, 1, ... in order; a sample's turns share one)."""
        starts = [i == 0 or key != self.keys[i - 1] for i, key in enumerate(self.keys)]
        return torch.tensor(starts, dtype=torch.long).cumsum(0) - 1

    def token_weights(self, modality: str) -> torch.Tensor:
        """(R, T) the per-sample weight of ``modality`` at every token."""
        return self.sample_weights(modality)[self.sample_index]

    def sample_weights(self, modality: str) -> torch.Tensor:
        """(S,) per-sample loss weights of ``modality`` (``text`` | ``image``)."""
        if modality not in MODALITIES:
            raise ValueError(f"modality '{modality}' is not one of {MODALITIES}")
        return self.text_weight if modality == "text" else self.image_weight

    def set_weights(self, modality: str, weights: torch.Tensor) -> None:
        """Replace the (S,) loss weights of ``modality``, on the batch's device and dtype."""
        current = self.sample_weights(modality)
        self._check_per_sample(f"{modality} weights", weights)
        setattr(self, f"{modality}_weight", weights.to(current.device, current.dtype))

    def set_reward(self, name: str, values: torch.Tensor) -> None:
        """Store (S,) reward values (NaN = none) under "<modality>/<name>"."""
        if name.partition("/")[0] not in MODALITIES or "/" not in name:
            raise ValueError(f"reward names are '<text|image>/<name>', got '{name}'")
        self._check_per_sample(f"reward '{name}'", values)
        self.rewards[name] = values

    def _check_per_sample(self, what: str, values: torch.Tensor) -> None:
        if values.shape != (self.num_samples,):
            raise ValueError(f"{what} have shape {tuple(values.shape)}, the batch has {self.num_samples} samples")

    def apply(self, fn: Callable[[Any], Any]) -> Batch:
        """A copy with ``fn`` applied to every tensor (rewards and window counts included)."""
        tensors = {name: fn(getattr(self, name)) for name in TENSOR_FIELDS}
        window = None if self.window_tokens is None else (fn(self.window_tokens[0]), fn(self.window_tokens[1]))
        return replace(self, **tensors, rewards={k: fn(v) for k, v in self.rewards.items()}, window_tokens=window)

    def to(self, device: torch.device | str) -> Batch:
        """A copy on ``device`` (Lightning's ``move_data_to_device`` calls this)."""
        device = torch.device(device)
        non_blocking = device.type not in ("cpu", "mps")  # as Lightning does for bare tensors
        return self.apply(lambda t: t.to(device, non_blocking=non_blocking))


def block_attention(batch: Batch) -> torch.Tensor:
    """(R, 1, T, T) bool attention (True: the query row may read the key column): causal within
    each sample (a padded row, or a packed row's segment), except that a bidirectional image block
    (``image_blocks``) reads all of itself and is read by no other token; padding reads itself only."""
    t = batch.input_ids.shape[1]
    sample = batch.part_samples().to(batch.sample_index.device)[batch.sample_index]
    real = batch.attention_mask.bool()
    same = (sample[:, :, None] == sample[:, None, :]) & real[:, None, :] & real[:, :, None]
    slots = torch.arange(t, device=sample.device)
    causal = slots[None, :, None] >= slots[None, None, :]
    blocks = batch.image_blocks
    key_in_block = (blocks > 0)[:, None, :]
    own_block = (blocks[:, :, None] == blocks[:, None, :]) & key_in_block
    allowed = same & ((causal & ~key_in_block) | own_block)
    return (allowed | torch.eye(t, dtype=torch.bool, device=sample.device))[:, None]


def collate(examples: list[Example], pad_id: int, pack_length: int | None = None) -> Batch:
    """Examples -> a batch: one right-padded row per sample, or packed rows of at most ``pack_length``.

    Per-part fields list the examples' weighted parts in order. Weights start at 1 (a reward
    callback sets them); ``rewards`` has every name any part has.
    """
    if not examples:
        raise ValueError("collate() needs at least one example")
    rows: Rows = pad_rows(examples, pad_id) if pack_length is None else pack_rows(examples, pack_length, pad_id)
    parts = [(e, turn, rewards) for e in examples for turn, (_, rewards) in enumerate(e.parts)]
    n = len(parts)
    names = sorted({name for _, _, rewards in parts for name in rewards})
    return Batch(
        **rows._asdict(),
        text_weight=torch.ones(n),
        image_weight=torch.ones(n),
        rewards={k: torch.tensor([rewards.get(k, float("nan")) for _, _, rewards in parts]) for k in names},
        keys=[e.key for e, _, _ in parts],
        prompt_ids=[e.prompt_id for e, _, _ in parts],
        turns=[turn for _, turn, _ in parts],
        packed=pack_length is not None,
    )
