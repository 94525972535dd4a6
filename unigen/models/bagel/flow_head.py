"""BAGEL's image head: rectified flow over a block of latent tokens (``unigen.models.image``'s seam).

- **layout**: ``<|vision_start|>``, N latent tokens, ``<|vision_end|>`` on one rotary position,
  bidirectional inside and read by no later token (the sequence ends there);
- **loss**: each training image gets a logit-normal time ``t`` (shifted by ``timestep_shift``, then
  mapped linearly into ``timestep_range``: a post-training fit may keep to the noisy end, where the
  layout is decided, see docs/shapes.md) and Gaussian noise; its tokens enter as
  ``x_t = (1 - t) x0 + t noise`` and the head predicts the velocity ``noise - x0``; per token the
  squared error averaged over channels, weighted by the sample's image weight and summed (the
  trainer divides by the global count of latent tokens, as for every head: per-sample reward
  weighting of the MSE, which the official trainer lacks);
- **sampling**: Euler over the official shifted schedule from noise, reading the text phase's KV
  cache; guidance against the image block alone (the text-free context of the official
  inferencer), in an interval, renormalised (``unigen.models.bagel.sampling``);
- **decoding**: the model's autoencoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from unigen.losses import IGNORE, HeadOutput
from unigen.models.bagel.embeddings import sample_timesteps
from unigen.models.bagel.heads import noised
from unigen.models.bagel.sampling import FlowSchedule, guide
from unigen.models.image import ImageBlock, ImageHead, ImagePayloadError, ImageSpec


@dataclass
class FlowTargets:
    """What the loss needs from :meth:`FlowHead.inputs`: the velocity target of every latent token
    (image-mask order) and that mask."""

    velocity: torch.Tensor
    image_mask: torch.Tensor


class FlowHead(ImageHead):
    """Rectified flow over latent tokens (see the module docstring)."""

    autoregressive = False
    empty_unconditional = True

    def __init__(self, spec: ImageSpec, begin_id: int, end_id: int, timestep_shift: float = 1.0):
        super().__init__(spec, begin_id, end_id)
        self.timestep_shift = timestep_shift
        self.timestep_range = (0.0, 1.0)  # pretraining's; a fit sets it (UnifiedLM's flow_timesteps)

    @property
    def timestep_range(self) -> tuple[float, float]:
        """``(low, high)``: training times are drawn in this part of [0, 1] (1 is pure noise)."""
        return self._timestep_range

    @timestep_range.setter
    def timestep_range(self, value: tuple[float, float]) -> None:
        low, high = map(float, value)
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"timestep_range {list(value)}: needs 0 <= low < high <= 1 (1 is pure noise)")
        self._timestep_range = (low, high)

    def check(self, payload: np.ndarray) -> np.ndarray:
        latents = np.asarray(payload)
        if latents.shape != self.spec.shape or not np.issubdtype(latents.dtype, np.floating):
            raise ImagePayloadError("image_shape", f"an image payload of {latents.dtype} {latents.shape}, the model "
                                    f"draws float latents of shape {self.spec.shape}")
        if not np.isfinite(latents).all():
            raise ImagePayloadError("image_values", "the latent payload has NaN or infinite values")
        return latents.astype(np.float32)

    def block(self, payload: np.ndarray, switch_target: int) -> ImageBlock:
        latents, n = self.check(payload), self.spec.num_tokens
        return ImageBlock(
            ids=[self.begin_id, *[0] * n, self.end_id],
            image=[False, *[True] * n, False],
            text_targets=[switch_target, *[IGNORE] * (n + 1)],
            image_targets=[IGNORE, *[0] * n, IGNORE],
            positions=[0] * (n + 2),
            values=latents,
        )

    def inputs(self, model: nn.Module, ids: torch.Tensor, image_mask: torch.Tensor, values: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, FlowTargets | None]:
        embeds = model.embed_text(ids.masked_fill(image_mask, model.spec.pad_id))
        count = int(image_mask.sum())
        if not count:
            return embeds, None
        n = self.spec.num_tokens
        low, high = self.timestep_range
        times = low + (high - low) * sample_timesteps(count // n, self.timestep_shift, generator)
        times = times.repeat_interleave(n)
        x0 = values.float().cpu()
        noise = torch.randn(x0.shape, generator=generator)
        device = embeds.device
        latent = model.embed_latents(noised(x0, noise, times).to(device), times.to(device), count // n)
        embeds = embeds.index_put((image_mask,), latent.to(embeds.dtype))
        return embeds, FlowTargets((noise - x0).to(device), image_mask)

    def loss(self, model: nn.Module, hidden: torch.Tensor, labels: torch.Tensor, token_weight: torch.Tensor,
             state: FlowTargets | None, chunk_size: int = 0) -> HeadOutput:
        selected = labels != IGNORE
        velocity = model.velocity(hidden[selected]).float()
        if state is None:
            target = velocity.new_zeros(velocity.shape)
        else:
            if bool((selected & ~state.image_mask).any()):
                raise ValueError("flow-head labels mark positions that hold no latent token")
            target = state.velocity[selected[state.image_mask]].float()
        mse = ((velocity - target) ** 2).mean(-1)
        return HeadOutput(weighted_loss=(mse * token_weight[selected].to(mse.dtype)).sum(), tokens=selected.sum(),
                          predictions=None, labels=labels[selected])

    def draw(self, model: nn.Module, context: Any, noise: torch.Tensor, guidance: float,
             settings: dict[str, Any]) -> torch.Tensor:
        try:
            schedule = FlowSchedule(cfg_text_scale=guidance, **settings)
        except TypeError as err:
            raise ValueError(f"flow sampling settings {sorted(settings)}: {err}; known: num_timesteps, "
                             "timestep_shift, cfg_interval, cfg_renorm_min, cfg_renorm_type") from err
        x = noise
        times, steps = schedule.times()
        for t, dt in zip(times.tolist(), steps.tolist()):
            v = model.flow_velocity(x, t, context)
            if schedule.guided(t):
                v = torch.stack([guide(c, u, schedule) for c, u in zip(v, model.flow_velocity(x, t, None))])
            x = x - v * dt
        return x

    def decode(self, model: nn.Module, payload: torch.Tensor) -> torch.Tensor:
        return model.decode_images(payload)
