"""Sampling settings and per-row results of the unified sampler."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from unigen.data.trajectory import MODES, Turn

SAMPLING_MODES = MODES + ("interleaved",)


@dataclass
class SamplingConfig:
    """How to sample one trajectory: reasoning text from the LM head, image ids from the image head."""

    mode: str = "unified"
    """unified: the model decides when to emit begin-of-image; explicit: text until end of text (or
    the reasoning limit), then the program appends begin-of-image; direct: image right after the
    prompt; interleaved: as unified, but after each image's end-of-image the row goes back to text
    (a reflection) and may emit begin-of-image again, up to ``max_images``, or end with EOS."""
    max_reasoning_tokens: int = 64
    """Text tokens a row may write in one text turn before it must have switched (unified /
    interleaved: else it ends there)."""
    text_temperature: float = 1.0
    top_p: float = 1.0
    """Nucleus sampling for text (1.0 = off)."""
    top_k: int = 0
    """Top-k for text (0 = off)."""
    cfg: float = 5.0
    """Classifier-free guidance scale for image ids (1.0 = no unconditional branch)."""
    image_temperature: float = 1.0
    image_top_k: int = 0
    """Top-k for image ids (0 = off)."""
    greedy: bool = False
    """Argmax instead of sampling, for both text and image ids."""
    max_images: int = 2
    """``interleaved`` mode: images a row may draw (first image + redraws); other modes draw one."""
    flow: dict = field(default_factory=dict)
    """A flow (block) image head's schedule, as its family names it (BAGEL: ``num_timesteps``,
    ``timestep_shift``, ``cfg_interval``, ``cfg_renorm_min``, ``cfg_renorm_type``; unset: the
    official defaults); ``cfg`` is its guidance scale. Ignored by token heads."""

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling mode '{self.mode}' is not one of {SAMPLING_MODES}")
        if self.max_images < 1:
            raise ValueError(f"max_images must be >= 1, got {self.max_images}")
        if self.max_reasoning_tokens < 0:
            raise ValueError(f"max_reasoning_tokens must be >= 0, got {self.max_reasoning_tokens}")
        if not self.greedy and min(self.text_temperature, self.image_temperature) <= 0:
            raise ValueError("temperatures must be > 0 (use greedy: true for argmax)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0 or self.image_top_k < 0:
            raise ValueError("top_k and image_top_k must be >= 0")
        if self.cfg < 1:
            raise ValueError(f"cfg must be >= 1 (1 = no guidance), got {self.cfg}")

    @property
    def images_per_row(self) -> int:
        """The most images one row may draw."""
        return self.max_images if self.mode == "interleaved" else 1

    def as_dict(self) -> dict:
        """The settings (``max_images`` only in interleaved mode, so single-image records are unchanged)."""
        out = asdict(self)
        if self.mode != "interleaved":
            del out["max_images"]
        if not self.flow:
            del out["flow"]
        return out


@dataclass
class SampleResult:
    """One sampled row: its reasoning and its image ids (or none)."""

    reasoning: str
    reasoning_ids: list[int]
    image_tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """The image payload in raster order (``num_image_tokens`` int64 ids, or (N, C) float32 latents
    of a block head), or empty (no image)."""
    switched: bool = False
    """The model emitted begin-of-image by itself (not appended by the program)."""
    stop: str = ""
    """Why the row ended: ``image`` (drew its last allowed image), ``eos`` (ended its text with EOS)
    or ``limit`` (reached max_reasoning_tokens in a text turn without switching)."""
    turns: list[Turn] = field(default_factory=list)
    """``interleaved`` mode: the turns after the first image (reflection text, then a redraw or
    none); empty in the other modes and for rows that ended after their first image."""

    @property
    def has_image(self) -> bool:
        return len(self.image_tokens) > 0
