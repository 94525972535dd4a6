"""The FLUX VAE of a BAGEL release (``ae.safetensors``) through ``diffusers``' ``AutoencoderKL``.

The release file holds the Black Forest Labs autoencoder under its original (LDM-style) names;
``diffusers``' own converter maps them to ``AutoencoderKL`` (no quant convs, 16 latent channels).
Latents are scaled as the official code scales them: ``encode`` = ``scale (mean - shift)`` (the
posterior mean; the official trainer samples it), ``decode`` = the decoder of ``z / scale +
shift``. ``diffusers`` is an optional dependency (``pip install 'unigen[bagel]'``), imported on
first use; parity with the official autoencoder: ``tests/test_bagel_parity.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn


@dataclass(frozen=True)
class FluxShape:
    """The autoencoder's architecture (defaults: the release's, ``modeling/autoencoder.py`` ``load_ae``)."""

    channels: int = 128
    multipliers: tuple[int, ...] = (1, 2, 4, 4)
    res_blocks: int = 2
    z_channels: int = 16
    scale: float = 0.3611
    shift: float = 0.1159

    def diffusers_config(self) -> dict:
        blocks = len(self.multipliers)
        return dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * blocks,
                    up_block_types=["UpDecoderBlock2D"] * blocks,
                    block_out_channels=[self.channels * m for m in self.multipliers],
                    layers_per_block=self.res_blocks, latent_channels=self.z_channels,
                    norm_num_groups=32, use_quant_conv=False, use_post_quant_conv=False,
                    scaling_factor=self.scale, shift_factor=self.shift)


class FluxLatents(nn.Module):
    """Pixels in [-1, 1] <-> scaled FLUX latents (B, z_channels, H / 8, W / 8)."""

    def __init__(self, vae: nn.Module, shape: FluxShape):
        super().__init__()
        self.vae, self.shape = vae.eval().requires_grad_(False), shape

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        mean = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist.mean
        return self.shape.scale * (mean.float() - self.shape.shift)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents / self.shape.scale + self.shape.shift
        return self.vae.decode(z.to(self.vae.dtype)).sample.float().clamp(-1, 1)


def load_flux(path: str | Path, shape: FluxShape = FluxShape()) -> FluxLatents:
    """The autoencoder of ``ae.safetensors``; every tensor of the file must land (strict)."""
    try:
        from diffusers import AutoencoderKL
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    except ImportError as err:
        raise ImportError("the FLUX VAE of a BAGEL folder needs diffusers: pip install 'unigen[bagel]'") from err
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"the BAGEL folder has no FLUX VAE '{path}'")
    vae = AutoencoderKL(**shape.diffusers_config())
    state = convert_ldm_vae_checkpoint(load_file(str(path)), vae.config)
    vae.load_state_dict(state, strict=True)
    return FluxLatents(vae, shape)
