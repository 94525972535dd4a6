"""Pixels <-> latents for the flow head: the FLUX VAE of a release folder, or plain pixels.

``pixels`` (tiny models, toy worlds): the latent is the image itself (3 channels, no
downsampling); the flow head's 2D latent patches then are pixel patches. ``flux``: the FLUX VAE of
the folder's ``ae.safetensors`` (16 channels, 8x down; ``flux_vae.py``, through diffusers).
"""

from __future__ import annotations

from pathlib import Path

import torch

from unigen.models.bagel.config import BagelConfig
from unigen.models.bagel.flux_vae import FluxLatents, load_flux

AE_WEIGHTS = "ae.safetensors"
from unigen.models.bagel.embeddings import patchify, unpatchify


class PixelLatents:
    """The identity autoencoder: latents are pixels in [-1, 1]."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents.clamp(-1, 1)


class FluxFromFolder:
    """The FLUX VAE of a release folder's ``ae.safetensors``, loaded on first use onto the device of
    its input (frozen, never part of the trained model or its checkpoints)."""

    def __init__(self, path: Path | None):
        self.path, self.vae = path, None

    def _on(self, device: torch.device) -> FluxLatents:
        if self.path is None:
            raise FileNotFoundError("this BAGEL model was built from an architecture config, not a release folder: "
                                    "there is no ae.safetensors to encode or decode pixels with")
        if self.vae is None:
            self.vae = load_flux(self.path)
        return self.vae.to(device)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._on(pixels.device).encode(pixels)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self._on(latents.device).decode(latents)


def build_autoencoder(config: BagelConfig) -> PixelLatents | FluxFromFolder:
    if config.autoencoder == "pixels":
        return PixelLatents()
    return FluxFromFolder(Path(config.folder) / AE_WEIGHTS if config.folder else None)


def to_tokens(latents: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) latents -> (B, N, p * p * C) latent tokens (row-major patches)."""
    return torch.stack([patchify(latent, patch) for latent in latents])


def from_tokens(tokens: torch.Tensor, side: int, patch: int) -> torch.Tensor:
    """(B, N, p * p * C) latent tokens of a ``side x side`` grid -> (B, C, side p, side p)."""
    return torch.stack([unpatchify(t, side, side, patch) for t in tokens])
