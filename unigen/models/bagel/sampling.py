"""Flow sampling of one latent block with the official schedule and text guidance.

Euler steps over ``linspace(1, 0, num_timesteps)`` after the timestep shift (``num_timesteps - 1``
steps, the last time 0 never evaluated), ``x <- x - v dt`` (velocity points from data to noise).
Text guidance inside ``cfg_interval`` (``lo < t <= hi``): ``v = v_u + s (v_c - v_u)`` with ``v_u``
from the text-free context, then renormalised so the guided norm does not exceed the conditional
one (``global``: over the whole block; ``channel``: per token), clamped below at ``cfg_renorm_min``;
``text_channel`` renormalises per token as well. No KV cache: each step reruns the context (its
tokens never see the block, so the result equals a cached run; the cache belongs to the sampler).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unigen.models.bagel.embeddings import shift_timesteps
from unigen.models.bagel.layout import PackedBatch
from unigen.models.bagel.model import BagelModel

RENORM_TYPES = ("global", "channel", "text_channel")


@dataclass(frozen=True)
class FlowSchedule:
    """The official text-to-image defaults (``inferencer.py``)."""

    num_timesteps: int = 50
    timestep_shift: float = 3.0
    cfg_text_scale: float = 4.0
    cfg_interval: tuple[float, float] = (0.4, 1.0)
    cfg_renorm_min: float = 0.0
    cfg_renorm_type: str = "global"

    def __post_init__(self):
        if self.cfg_renorm_type not in RENORM_TYPES:
            raise ValueError(f"cfg_renorm_type '{self.cfg_renorm_type}' is not one of {RENORM_TYPES}")
        if self.num_timesteps < 2:
            raise ValueError(f"num_timesteps must be at least 2, got {self.num_timesteps}")

    def times(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(the times evaluated, the step sizes): both of length ``num_timesteps - 1``."""
        t = shift_timesteps(torch.linspace(1, 0, self.num_timesteps), self.timestep_shift)
        return t[:-1], t[:-1] - t[1:]

    def guided(self, t: float) -> bool:
        lo, hi = self.cfg_interval
        return self.cfg_text_scale > 1.0 and lo < t <= hi


def guide(v_cond: torch.Tensor, v_uncond: torch.Tensor, schedule: FlowSchedule) -> torch.Tensor:
    """Text-guided velocity of one block (N, C), renormalised as the schedule says."""
    v = v_uncond + schedule.cfg_text_scale * (v_cond - v_uncond)
    if schedule.cfg_renorm_type == "global":
        reference, guided = torch.linalg.vector_norm(v_cond), torch.linalg.vector_norm(v)
    else:
        reference = torch.linalg.vector_norm(v_cond, dim=-1, keepdim=True)
        guided = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    return v * (reference / (guided + 1e-8)).clamp(min=schedule.cfg_renorm_min, max=1.0)


def block_velocity(model: BagelModel, batch: PackedBatch, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    times = t.to(device=x.device, dtype=torch.float32).expand(x.shape[0])
    return model.velocity(model(batch, x, times), batch)


@torch.no_grad()
def sample_block(model: BagelModel, cond: PackedBatch, uncond: PackedBatch | None, noise: torch.Tensor,
                 schedule: FlowSchedule) -> torch.Tensor:
    """Denoise the one noised latent block of ``cond`` from ``noise`` (N, patch_dim); ``uncond``
    holds the same block after the text-free context (needed when guidance is on)."""
    if schedule.cfg_text_scale > 1.0 and uncond is None:
        raise ValueError("text guidance (cfg_text_scale > 1) needs the text-free context 'uncond'")
    x = noise
    times, steps = schedule.times()
    for t, dt in zip(times, steps):
        v = block_velocity(model, cond, x, t)
        if schedule.guided(float(t)):
            v = guide(v, block_velocity(model, uncond, x, t), schedule)
        x = x - v * dt
    return x
