"""The trajectory record: one self-generated sample -- a prompt, then text and image segments in turn."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

MODES = ("unified", "explicit", "direct")
"""unified: the model emits begin-of-image itself; explicit: text, then the program appends
begin-of-image; direct: image right after the prompt (no reasoning)."""


def no_image() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


def rewards_of_turn(rewards: dict[str, dict[str, float]], turn: int, last: bool) -> dict[str, dict[str, float]]:
    """The rewards of image turn ``turn``, names without their ``@<turn>``: the ``<name>@<turn>``
    values, and on the ``last`` turn the plain ``<name>`` values (the trajectory's = its final
    image's) where no ``@<turn>`` one is given (docs/trajectories.md)."""
    out: dict[str, dict[str, float]] = {}
    for modality, named in rewards.items():
        for name, value in named.items():
            base, at, index = name.rpartition("@")
            if at and index == str(turn):
                out.setdefault(modality, {})[base] = value
            elif not at and last:
                out.setdefault(modality, {}).setdefault(name, value)
    return out


def keyed_by_turn(per_turn: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """The inverse of :func:`rewards_of_turn` over all turns: ``<name>@<k>`` for turn k, and the
    last turn's values also as plain ``<name>``."""
    out: dict[str, dict[str, float]] = {}
    for turn, rewards in enumerate(per_turn):
        for modality, named in rewards.items():
            for name, value in named.items():
                out.setdefault(modality, {})[f"{name}@{turn}"] = value
                if turn == len(per_turn) - 1:
                    out[modality][name] = value
    return out


@dataclass
class Turn:
    """A later turn of an interleaved trajectory: the text written after the previous image (a
    reflection), then the image it drew again, or none (the trajectory ended with this text)."""

    text: str
    image_tokens: np.ndarray = field(default_factory=no_image)
    """The image payload in raster order (VQ ids (N,) int64, or latents (N, C) float32); empty when this
    turn ended without an image (only the last may)."""
    png: bytes | None = None
    """Optional decoded image."""

    @property
    def has_image(self) -> bool:
        return len(self.image_tokens) > 0


@dataclass
class Trajectory:
    """A prompt, the model's reasoning, its image ids, any later reflect-and-redraw turns, and
    everything known about them.

    The first turn is ``reasoning`` + ``image_tokens`` (+ ``png``), as in format version 1; an
    interleaved trajectory continues with :attr:`turns`. :meth:`all_turns` is the whole ordered
    list (text, image, text, image, ...).
    """

    prompt_id: str
    sample_idx: int
    prompt: str
    reasoning: str = ""
    image_tokens: np.ndarray = field(default_factory=no_image)
    """The first image's payload in raster order: VQ ids (N,) int64 or latent tokens (N, C) float32
    (format 3); empty when no image was produced."""
    category: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Structured prompt metadata (GenEval-style ``include`` etc.)."""
    mode: str = "unified"
    generation: dict[str, Any] = field(default_factory=dict)
    """Sampling settings (temperatures, cfg, seed, ...)."""
    model: str = ""
    """Model / checkpoint id that produced it."""
    rewards: dict[str, dict[str, float]] = field(default_factory=dict)
    """modality ("text" | "image") -> reward name -> value; ``<name>@<k>`` is the value for image
    turn k (0-based), a plain ``<name>`` the trajectory's (its final image's) value (docs/trajectories.md)."""
    png: bytes | None = None
    """Optional decoded first image (never needed for token-only training)."""
    turns: list[Turn] = field(default_factory=list)
    """Turns after the first image (format version 2): reflection text, then a redraw (or none)."""

    @property
    def key(self) -> str:
        """WebDataset key: no dots (webdataset splits keys at the first dot)."""
        return f"{self.prompt_id}_{self.sample_idx}".replace(".", "-")

    @property
    def has_image(self) -> bool:
        """Whether the first turn drew an image."""
        return len(self.image_tokens) > 0

    @property
    def num_images(self) -> int:
        """Images drawn over all turns (0: none)."""
        return sum(turn.has_image for turn in self.all_turns())

    def all_turns(self) -> list[Turn]:
        """Every turn in sequence order: the first (``reasoning``, ``image_tokens``, ``png``), then
        :attr:`turns` (text, then an image, or none on the last)."""
        return [Turn(self.reasoning, self.image_tokens, self.png), *self.turns]

    def image_turns(self) -> list[Trajectory]:
        """One single-image view per image turn, in order (the trajectory itself when it has no
        later turns): turn k's text as ``reasoning``, its image ids and PNG, and its rewards
        (:func:`rewards_of_turn`); what a reward scores for that turn."""
        if not self.turns:
            return [self]
        drawn = [turn for turn in self.all_turns() if turn.has_image]
        return [replace(self, reasoning=turn.text, image_tokens=turn.image_tokens, png=turn.png, turns=[],
                        rewards=rewards_of_turn(self.rewards, k, k == len(drawn) - 1))
                for k, turn in enumerate(drawn)]
