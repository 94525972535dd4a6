"""Build training sequences from trajectories (``unigen.data.batch.collate`` batches them).

A sequence is ``[BOS] chat(prompt) reasoning [BOI] image ids [EOI] [EOS]``. Each position holds a
text id or (``image_mask``) an image codebook id. Labels are aligned with positions (``labels[t]``
is the id predicted at ``t``), so packing several sequences into one row only concatenates.

Condition dropout (classifier-free guidance training, as Janus does it) replaces a sample's text
before the image with its unconditional form (:func:`unconditional`, the same function the
sampler's unconditional rows use) and trains only its image ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from unigen.data.trajectory import MODES, Trajectory
from unigen.losses import IGNORE
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
    rewards: dict[str, float]
    """"<modality>/<reward name>" -> value."""


def unconditional(ids: torch.Tensor, spec: TokenSpec) -> torch.Tensor:
    """The unconditional form of text ids (Janus' rule): every id except BOS and begin-of-image
    becomes pad. The one definition shared by condition dropout in training and the sampler's
    classifier-free-guidance rows (prompt, reasoning and switch alike)."""
    keep = (ids == spec.bos_id) | (ids == spec.boi_id)
    return ids.masked_fill(~keep, spec.pad_id)


def build_example(traj: Trajectory, spec: TokenSpec, mode: str, drop_condition: bool = False) -> Example:
    """Turn a trajectory into a sequence with text and image label masks.

    Where the reasoning ends, mode ``unified`` supervises the begin-of-image switch token the model
    must emit; ``explicit`` (today's practice) supervises end-of-text there, and the program
    supplies begin-of-image (no loss on it) as the sampler's explicit mode does; ``direct`` drops
    the reasoning and supplies begin-of-image. ``drop_condition`` (a trajectory with an image)
    turns everything before the image into its :func:`unconditional` form and leaves only the image
    ids supervised. Raises :class:`BadSample`.
    """
    if mode not in MODES:
        raise ValueError(f"mode '{mode}' is not one of {MODES}")
    prompt = spec.encode_prompt(traj.prompt)
    reasoning = spec.encode_text(traj.reasoning) if mode != "direct" else []
    # Segments as lists: ids, and the id each position holds as a text / image *target* (or IGNORE).
    ids, text_target = prompt + reasoning, [IGNORE] * len(prompt) + reasoning
    image: list[int] = []
    if traj.has_image:
        tokens = np.asarray(traj.image_tokens)
        if len(tokens) != spec.num_image_tokens:
            raise BadSample("image_token_count", f"{len(tokens)} image ids, the model draws {spec.num_image_tokens}")
        if tokens.min() < 0 or tokens.max() >= spec.codebook_size:
            raise BadSample("image_id_range", f"image ids outside [0, {spec.codebook_size})")
        image = tokens.tolist()
        ids = ids + [spec.boi_id] + image + [spec.eoi_id]
        switch_target = {"unified": spec.boi_id, "explicit": spec.eos_id, "direct": IGNORE}[mode]
        text_target += [switch_target] + [IGNORE] * len(image) + [spec.eoi_id]
    elif mode == "direct":
        raise BadSample("no_image", "direct mode needs an image")
    ids.append(spec.eos_id)
    text_target.append(spec.eos_id)
    if len(ids) > spec.max_seq_len:
        raise BadSample("too_long", f"{len(ids)} tokens > max_seq_len {spec.max_seq_len}")

    before = len(prompt) + len(reasoning) + 1  # up to and including BOI (or the EOS of a text-only one)
    if drop_condition and image:
        ids[:before] = unconditional(torch.tensor(ids[:before]), spec).tolist()
        text_target = [IGNORE] * len(ids)
    image_mask = [False] * before + [True] * len(image) + [False] * (len(ids) - before - len(image))
    image_target = [IGNORE] * before + image + [IGNORE] * (len(ids) - before - len(image))
    rewards = {f"{mod}/{name}": float(v) for mod, named in traj.rewards.items() for name, v in named.items()}
    # labels[t] is the target at t + 1 (labels aligned with positions)
    return Example(ids, image_mask, text_target[1:] + [IGNORE], image_target[1:] + [IGNORE], traj.key,
                   traj.prompt_id, rewards)
