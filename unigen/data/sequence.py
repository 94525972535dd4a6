"""Build training sequences from trajectories (``unigen.data.batch.collate`` batches them).

A sequence is ``[BOS] chat(prompt) reasoning <image block> [EOS]``; an interleaved
trajectory (format 2) repeats ``reflection <image block>`` after the first image before the EOS
(or ends with a reflection and EOS). The model's image head lays out each image block
(:meth:`unigen.models.image.ImageHead.block`; Janus: ``[BOI] image ids [EOI]``). Each position
holds a text id or (``image_mask``) an image codebook id. Labels are aligned with positions (``labels[t]``
is the id predicted at ``t``), so packing several sequences into one row only concatenates.

Condition dropout (classifier-free guidance training, as Janus does it) replaces a sample's text
before its (last) image with its unconditional form (the model family's rule,
:meth:`unigen.models.unified.TokenSpec.unconditional`, the one the sampler's unconditional rows
use) and trains only its image ids.
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
    model (``image_token_count``, ``image_id_range``) or the block needs an attention pattern the
    batch cannot carry yet."""
    head = spec.image_head
    if head.attention != "causal":
        raise BadSample("image_attention", f"the model's image blocks attend '{head.attention}'; training batches "
                        "carry causal attention only (a block attention mask is issue 30 item 4)")
    try:
        return head.block(tokens, switch_target)
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
    slots = _layout(traj, spec, mode)
    ids, image_mask, text_target, image_target = slots.ids, slots.image, slots.text_target, slots.image_target
    if len(ids) > spec.max_seq_len:
        raise BadSample("too_long", f"{len(ids)} tokens > max_seq_len {spec.max_seq_len}")
    if drop_condition and traj.has_image:  # every text position before the last image id (as the sampler's rows see it)
        last = max(i for i, is_image in enumerate(image_mask) if is_image)
        head = torch.tensor(ids[:last])
        ids[:last] = torch.where(torch.tensor(image_mask[:last]), head, spec.unconditional(head)).tolist()
        text_target = [IGNORE] * len(ids)
    # labels[t] is the target at t + 1 (labels aligned with positions), so is the part that weights it
    turns = len(traj.turns) + 1
    rewards = [turn_rewards(traj.rewards, k, k == turns - 1) for k in range(turns)]
    parts = [(max(slots.turn_of.index(k) - 1, 0), rewards[k]) for k in range(turns)]
    return Example(ids, image_mask, text_target[1:] + [IGNORE], image_target[1:] + [IGNORE], traj.key,
                   traj.prompt_id, parts)


@dataclass
class _Slots:
    """Per position of a sequence being built: the id, whether it holds the image payload, its
    target as a text / image id (or IGNORE; not yet shifted) and the turn it belongs to."""

    ids: list[int] = field(default_factory=list)
    image: list[bool] = field(default_factory=list)
    text_target: list[int] = field(default_factory=list)
    image_target: list[int] = field(default_factory=list)
    turn_of: list[int] = field(default_factory=list)

    def add_text(self, ids: list[int], targets: list[int], turn: int) -> None:
        self.add(ids, [False] * len(ids), targets, [IGNORE] * len(ids), turn)

    def add(self, ids: list[int], image: list[bool], text_target: list[int], image_target: list[int], turn: int) -> None:
        self.ids += ids
        self.image += image
        self.text_target += text_target
        self.image_target += image_target
        self.turn_of += [turn] * len(ids)


def _layout(traj: Trajectory, spec: TokenSpec, mode: str) -> _Slots:
    """The slots of the full sequence: prompt, then per turn its text and its image block."""
    prompt = spec.encode_prompt(traj.prompt)
    switch_target = {"unified": spec.boi_id, "explicit": spec.eos_id, "direct": IGNORE}[mode]
    slots = _Slots()
    slots.add_text(prompt, [IGNORE] * len(prompt), 0)
    for turn, step in enumerate(traj.all_turns()):
        reasoning = spec.encode_text(step.text) if mode != "direct" else []
        slots.add_text(reasoning, list(reasoning), turn)
        if step.has_image:
            block = image_block(step.image_tokens, spec, switch_target)
            slots.add(block.ids, block.image, block.text_targets, block.image_targets, turn)
    # a closing reflection cut by the text limit ended without the EOS: the sequence ends, nothing teaches it
    cut = bool(traj.turns) and not traj.turns[-1].has_image and traj.generation.get("stop") == "limit"
    slots.add_text([spec.eos_id], [IGNORE if cut else spec.eos_id], len(traj.turns))  # the EOS ends the last turn
    return slots
