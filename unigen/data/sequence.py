"""Build training sequences from trajectories (``unigen.data.batch.collate`` batches them).

A sequence is ``[BOS] chat(prompt) reasoning <image block> [EOS]``; an interleaved
trajectory (format 2) repeats ``reflection <image block>`` after the first image before the EOS
(or ends with a reflection and EOS). The model's image head lays out each image block
(:meth:`unigen.models.image.ImageHead.block`; Janus: ``[BOI] image ids [EOI]``; BAGEL:
``<|vision_start|> latents <|vision_end|>`` on one rotary position, a noised block that ends the
sequence: nothing after it could read it). Each position holds a text id or (``image_mask``) an
image payload element (a codebook id, or a latent token whose values travel in
``Example.image_values``). Labels are aligned with positions (``labels[t]`` is the id predicted at
``t``; an image head that is not autoregressive supervises its slots themselves), so packing
several sequences into one row only concatenates.

Condition dropout (classifier-free guidance training) replaces a sample's text before its (last)
image with its unconditional form (the model family's rule,
:meth:`unigen.models.unified.TokenSpec.unconditional`, the one the sampler's unconditional rows
use), or, for a head whose unconditional context is empty (BAGEL's text-free context), leaves the
image block alone; either way only the image is trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from unigen.data.trajectory import MODES, Trajectory, rewards_of_turn
from unigen.losses import IGNORE
from unigen.models.image import ImageBlock, ImagePayloadError
from unigen.models.unified import TokenSpec


class BadSample(ValueError):
    """A trajectory that cannot become a training sequence; ``reason`` is a short slug."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass
class Example:
    """One training sequence (lists of equal length) and its per-sample fields."""

    input_ids: list[int]
    image_mask: list[bool]
    text_labels: list[int]
    image_labels: list[int]
    positions: list[int]
    """Rotary position of each slot (0, 1, 2, ... except where an image block shares one)."""
    blocks: list[int]
    """0 outside bidirectional image blocks; k in the k-th one (1-based)."""
    image_values: np.ndarray | None
    """(M, C) float32 continuous payload of the ``image_mask`` slots in order; None for image ids."""
    key: str
    prompt_id: str
    parts: list[tuple[int, dict[str, float]]]
    """The weighted parts, one per image turn (one for a single-image trajectory): (first label
    position, "<modality>/<reward name>" -> value); the loss of part k's labels is weighted by its rewards."""


def turn_rewards(rewards: dict[str, dict[str, float]], turn: int, last: bool) -> dict[str, float]:
    """The "<modality>/<name>" rewards of image turn ``turn`` (:func:`unigen.data.trajectory.rewards_of_turn`)."""
    return {f"{modality}/{name}": float(value)
            for modality, named in rewards_of_turn(rewards, turn, last).items() for name, value in named.items()}


def check_turns(drew: list[bool]) -> None:
    """:class:`BadSample` ``bad_turns`` unless every turn but the last drew an image (``drew``: per
    turn, the first included, whether it has one)."""
    if not all(drew[:-1]):
        raise BadSample("bad_turns", f"turn {drew.index(False)} has no image but a later turn follows it")


def image_block(tokens: np.ndarray, spec: TokenSpec, switch_target: int) -> ImageBlock:
    """The image head's block for one image; :class:`BadSample` when the payload does not fit the
    model (the head's reason: ``image_token_count``, ``image_id_range``, ``image_shape``, ...)."""
    try:
        return spec.image_head.block(tokens, switch_target)
    except ImagePayloadError as e:
        raise BadSample(e.reason, e.detail) from e


def build_example(traj: Trajectory, spec: TokenSpec, mode: str, drop_condition: bool = False) -> Example:
    """Turn a trajectory into a sequence with text and image label masks.

    Where the reasoning ends, mode ``unified`` supervises the begin-of-image switch token the model
    must emit; ``explicit`` (today's practice) supervises end-of-text there, and the program
    supplies begin-of-image (no loss on it) as the sampler's explicit mode does; ``direct`` drops
    the reasoning and supplies begin-of-image. ``drop_condition`` (a trajectory with an image)
    turns every text position before the last image id into its unconditional form (``spec.unconditional``) and
    leaves only the image ids supervised. Raises :class:`BadSample` (``bad_turns``: :func:`check_turns`).

    A trajectory with later turns (unified mode only) continues after each image's EOI with the
    reflection text, then BOI (supervised: the model chooses to redraw) and the next image, or
    the final EOS (not supervised after a closing reflection the sampler cut at its text limit,
    ``generation["stop"] == "limit"``: the model never wrote it); each image turn is one weighted part (:attr:`Example.parts`), its rewards from
    :func:`turn_rewards`.
    """
    if mode not in MODES:
        raise ValueError(f"mode '{mode}' is not one of {MODES}")
    if traj.turns and mode != "unified":
        raise BadSample("turns_mode", f"a trajectory with {len(traj.turns) + 1} turns trains only in mode 'unified', not '{mode}'")
    check_turns([turn.has_image for turn in traj.all_turns()])
    if mode == "direct" and not traj.has_image:
        raise BadSample("no_image", "direct mode needs an image")
    head = spec.image_head
    empty = drop_condition and traj.has_image and head.empty_unconditional
    slots = _image_alone(traj, spec) if empty else _layout(traj, spec, mode)
    ids, image_mask, text_target, image_target = slots.ids, slots.image, slots.text_target, slots.image_target
    if len(ids) > spec.max_seq_len:
        raise BadSample("too_long", f"{len(ids)} tokens > max_seq_len {spec.max_seq_len}")
    if drop_condition and traj.has_image:  # every text position before the last image id (as the sampler's rows see it)
        if not empty:
            last = max(i for i, is_image in enumerate(image_mask) if is_image)
            prefix = torch.tensor(ids[:last])
            ids[:last] = torch.where(torch.tensor(image_mask[:last]), prefix, spec.unconditional(prefix)).tolist()
        text_target = [IGNORE] * len(ids)
    # labels[t] is the target at t + 1 (labels aligned with positions), so is the part that weights it
    turns = len(traj.turns) + 1
    rewards = [turn_rewards(traj.rewards, k, k == turns - 1) for k in range(turns)]
    parts = [(max(slots.turn_of.index(k) - 1, 0), rewards[k]) for k in range(turns)]
    image_labels = image_target[1:] + [IGNORE] if head.autoregressive else image_target
    values = np.concatenate(slots.values) if slots.values else None
    return Example(ids, image_mask, text_target[1:] + [IGNORE], image_labels, slots.positions, slots.blocks, values,
                   traj.key, traj.prompt_id, parts)


@dataclass
class _Slots:
    """Per position of a sequence being built: the id, whether it holds the image payload, its
    target as a text / image id (or IGNORE; not yet shifted) and the turn it belongs to."""

    ids: list[int] = field(default_factory=list)
    image: list[bool] = field(default_factory=list)
    text_target: list[int] = field(default_factory=list)
    image_target: list[int] = field(default_factory=list)
    turn_of: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)

    def add_text(self, ids: list[int], targets: list[int], turn: int) -> None:
        start = len(self.ids)
        self.add(ids, [False] * len(ids), targets, [IGNORE] * len(ids), turn, list(range(start, start + len(ids))))

    def add_block(self, block: ImageBlock, turn: int, bidirectional: bool) -> None:
        start = len(self.ids)
        self.add(block.ids, block.image, block.text_targets, block.image_targets, turn,
                 [start + offset for offset in block.positions])
        if bidirectional:
            self.blocks[start:] = [max(self.blocks[:start], default=0) + 1] * len(block.ids)
        if block.values is not None:
            self.values.append(np.asarray(block.values, dtype=np.float32))

    def add(self, ids: list[int], image: list[bool], text_target: list[int], image_target: list[int], turn: int,
            positions: list[int]) -> None:
        self.ids += ids
        self.image += image
        self.text_target += text_target
        self.image_target += image_target
        self.turn_of += [turn] * len(ids)
        self.positions += positions
        self.blocks += [0] * len(ids)


def _layout(traj: Trajectory, spec: TokenSpec, mode: str) -> _Slots:
    """The slots of the full sequence: prompt, then per turn its text and its image block."""
    prompt = spec.encode_prompt(traj.prompt)
    switch_target = {"unified": spec.boi_id, "explicit": spec.eos_id, "direct": IGNORE}[mode]
    head = spec.image_head
    if traj.turns and not head.autoregressive:
        raise BadSample("turns_after_block", "the model's image block is noised and no later token may read it, "
                        f"so a trajectory with {len(traj.turns) + 1} turns cannot train on it")
    slots = _Slots()
    slots.add_text(prompt, [IGNORE] * len(prompt), 0)
    for turn, step in enumerate(traj.all_turns()):
        reasoning = spec.encode_text(step.text) if mode != "direct" else []
        slots.add_text(reasoning, list(reasoning), turn)
        if step.has_image:
            slots.add_block(image_block(step.image_tokens, spec, switch_target), turn, not head.autoregressive)
    if not head.autoregressive and traj.has_image:
        return slots  # the noised block ends the sequence (the sampler stops there too)
    # a closing reflection cut by the text limit ended without the EOS: the sequence ends, nothing teaches it
    cut = bool(traj.turns) and not traj.turns[-1].has_image and traj.generation.get("stop") == "limit"
    slots.add_text([spec.eos_id], [IGNORE if cut else spec.eos_id], len(traj.turns))  # the EOS ends the last turn
    return slots


def _image_alone(traj: Trajectory, spec: TokenSpec) -> _Slots:
    """The empty unconditional context: the (single) image block alone, nothing to condition on."""
    slots = _Slots()
    slots.add_block(image_block(traj.image_tokens, spec, IGNORE), 0, not spec.image_head.autoregressive)
    return slots
