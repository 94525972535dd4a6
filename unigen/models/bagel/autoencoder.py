"""Pixels <-> latents for the flow head: the FLUX VAE of an official folder, or plain pixels.

``pixels`` (tiny models, toy worlds): the latent is the image itself (3 channels, no
downsampling); the flow head's 2D latent patches then are pixel patches. ``flux``: the FLUX VAE of
``ae.safetensors`` (16 channels, 8x down), which unigen does not build yet: fitting and sampling
latents work, turning them into pixels raises (docs/models.md).
"""

from __future__ import annotations

import torch
from torch import nn

from unigen.models.bagel.config import BagelConfig
from unigen.models.bagel.embeddings import patchify, unpatchify


class PixelLatents(nn.Module):
    """The identity autoencoder: latents are pixels in [-1, 1]."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents.clamp(-1, 1)


class FluxNotBuilt(nn.Module):
    """Stands in for the FLUX VAE: every use names what is missing."""

    def _refuse(self, *args) -> torch.Tensor:
        raise NotImplementedError("the FLUX VAE (ae.safetensors) is not built in unigen yet: a BAGEL folder fits and "
                                  "samples latents, but encoding or decoding pixels needs it (docs/models.md)")

    encode = decode = _refuse


def build_autoencoder(config: BagelConfig) -> nn.Module:
    return PixelLatents() if config.autoencoder == "pixels" else FluxNotBuilt()


def to_tokens(latents: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) latents -> (B, N, p * p * C) latent tokens (row-major patches)."""
    return torch.stack([patchify(latent, patch) for latent in latents])


def from_tokens(tokens: torch.Tensor, side: int, patch: int) -> torch.Tensor:
    """(B, N, p * p * C) latent tokens of a ``side x side`` grid -> (B, C, side p, side p)."""
    return torch.stack([unpatchify(t, side, side, patch) for t in tokens])
