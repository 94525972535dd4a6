"""Build training sequences from trajectories (``unigen.data.batch.collate`` batches them).

A sequence is ``[BOS] chat(prompt) reasoning [BOI] image ids [EOI] [EOS]``; an interleaved
trajectory (format 2) repeats ``reflection [BOI] image ids [EOI]`` after the first image before
the EOS (or ends with a reflection and EOS). Each position holds a text id or (``image_mask``) an
image codebook id. Labels are aligned with positions (``labels[t]``
is the id predicted at ``t``), so packing several sequences into one row only concatenates.

Condition dropout (classifier-free guidance training, as Janus does it) replaces a sample's text
before its (last) image with its unconditional form (:func:`unconditional`, the same function the
sampler's unconditional rows use) and trains only its image ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from unigen.data.trajectory import MODES, Trajectory, rewards_of_turn
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
    parts: list[tuple[int, dict[str, float]]]
    """The weighted parts, one per image turn (one for a single-image trajectory): (first label
    position, "<modality>/<reward name>" -> value); the loss of part k's labels is weighted by its rewards."""


def unconditional(ids: torch.Tensor, spec: TokenSpec) -> torch.Tensor:
    """The unconditional form of text ids (Janus' rule): every id except BOS and begin-of-image
    becomes pad. The one definition shared by condition dropout in training and the sampler's
    classifier-free-guidance rows (prompt, reasoning and switch alike)."""
    keep = (ids == spec.bos_id) | (ids == spec.boi_id)
    return ids.masked_fill(~keep, spec.pad_id)


def turn_rewards(rewards: dict[str, dict[str, float]], turn: int, last: bool) -> dict[str, float]:
    """The "<modality>/<name>" rewards of image turn ``turn`` (:func:`unigen.data.trajectory.rewards_of_turn`)."""
    return {f"{modality}/{name}": float(value)
            for modality, named in rewards_of_turn(rewards, turn, last).items() for name, value in named.items()}


def check_turns(drew: list[bool]) -> None:
    """:class:`BadSample` ``bad_turns`` unless every turn but the last drew an image (``drew``: per
    turn, the first included, whether it has one)."""
    if not all(drew[:-1]):
        raise BadSample("bad_turns", f"turn {drew.index(False)} has no image but a later turn follows it")


def checked_image(tokens: np.ndarray, spec: TokenSpec) -> list[int]:
    """Image ids as a list; :class:`BadSample` when their count or range does not fit the model."""
    tokens = np.asarray(tokens)
    if len(tokens) != spec.num_image_tokens:
        raise BadSample("image_token_count", f"{len(tokens)} image ids, the model draws {spec.num_image_tokens}")
    if tokens.min() < 0 or tokens.max() >= spec.codebook_size:
        raise BadSample("image_id_range", f"image ids outside [0, {spec.codebook_size})")
    return tokens.tolist()


def build_example(traj: Trajectory, spec: TokenSpec, mode: str, drop_condition: bool = False) -> Example:
    """Turn a trajectory into a sequence with text and image label masks.

    Where the reasoning ends, mode ``unified`` supervises the begin-of-image switch token the model
    must emit; ``explicit`` (today's practice) supervises end-of-text there, and the program
    supplies begin-of-image (no loss on it) as the sampler's explicit mode does; ``direct`` drops
    the reasoning and supplies begin-of-image. ``drop_condition`` (a trajectory with an image)
    turns every text position before the last image id into its :func:`unconditional` form and
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
    ids, text_target, image_target, turn_of = _layout(traj, spec, mode)
    if len(ids) > spec.max_seq_len:
        raise BadSample("too_long", f"{len(ids)} tokens > max_seq_len {spec.max_seq_len}")

    image_mask = [t != IGNORE for t in image_target]
    if drop_condition and traj.has_image:  # every text position before the last image id (as the sampler's rows see it)
        last = max(i for i, is_image in enumerate(image_mask) if is_image)
        head = torch.tensor(ids[:last])
        ids[:last] = torch.where(torch.tensor(image_mask[:last]), head, unconditional(head, spec)).tolist()
        text_target = [IGNORE] * len(ids)
    # labels[t] is the target at t + 1 (labels aligned with positions), so is the part that weights it
    turns = len(traj.turns) + 1
    rewards = [turn_rewards(traj.rewards, k, k == turns - 1) for k in range(turns)]
    parts = [(max(turn_of.index(k) - 1, 0), rewards[k]) for k in range(turns)]
    return Example(ids, image_mask, text_target[1:] + [IGNORE], image_target[1:] + [IGNORE], traj.key,
                   traj.prompt_id, parts)


def _layout(traj: Trajectory, spec: TokenSpec, mode: str) -> tuple[list[int], list[int], list[int], list[int]]:
    """Per position of the full sequence: the id, its target as a text / image id (or IGNORE), and
    the turn it belongs to (targets not yet shifted)."""
    prompt = spec.encode_prompt(traj.prompt)
    switch_target = {"unified": spec.boi_id, "explicit": spec.eos_id, "direct": IGNORE}[mode]
    ids, text_target, image_target = list(prompt), [IGNORE] * len(prompt), [IGNORE] * len(prompt)
    turn_of: list[int] = [0] * len(prompt)
    for turn, step in enumerate(traj.all_turns()):
        reasoning = spec.encode_text(step.text) if mode != "direct" else []
        segment, targets = list(reasoning), list(reasoning)
        if step.has_image:
            image = checked_image(step.image_tokens, spec)
            segment += [spec.boi_id] + image + [spec.eoi_id]
            targets += [switch_target] + [IGNORE] * len(image) + [spec.eoi_id]
            image_target += [IGNORE] * (len(reasoning) + 1) + image + [IGNORE]
        else:
            image_target += [IGNORE] * len(reasoning)
        ids += segment
        text_target += targets
        turn_of += [turn] * len(segment)
    ids.append(spec.eos_id)
    # a closing reflection cut by the text limit ended without the EOS: the sequence ends, nothing teaches it
    cut = bool(traj.turns) and not traj.turns[-1].has_image and traj.generation.get("stop") == "limit"
    text_target.append(IGNORE if cut else spec.eos_id)
    image_target.append(IGNORE)
    turn_of.append(len(traj.turns))  # the EOS ends the last turn (all of an empty closing one)
    return ids, text_target, image_target, turn_of
