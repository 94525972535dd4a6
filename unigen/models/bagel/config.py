"""BAGEL's architecture settings: a Qwen2 decoder config plus the latent (flow) geometry.

An official BAGEL folder holds only ``llm_config.json`` (Qwen2) and ``vit_config.json`` (SigLIP);
the latent geometry lives in the official code (``app.py``: FLUX VAE with 16 channels and 8x
downsampling, 2x2 latent patches, ``max_latent_size=64``), so those are this module's defaults. A
folder unigen exports adds ``unigen_bagel.json`` with the fields that differ (``GEOMETRY_FILE``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import Qwen2Config

QWEN25_7B = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                 num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                 rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False, hidden_act="silu")
"""The Qwen2.5-7B decoder of BAGEL-7B-MoT (both experts have this shape)."""


GEOMETRY_FILE = "unigen_bagel.json"
AUTOENCODERS = ("flux", "pixels")


@dataclass
class BagelConfig:
    """The MoT decoder (``llm``) and the latent image geometry of the flow head."""

    model_type = "bagel"
    llm: Qwen2Config
    latent_channels: int = 16
    vae_downsample: int = 8
    latent_patch_size: int = 2
    max_latent_size: int = 64
    timestep_shift: float = 1.0
    image_size: int | None = None
    """Side of the square images unigen trains and samples, in pixels (unset: the largest the latent
    position table covers, ``max_latent_size`` tokens: 1024 px for the release)."""
    autoencoder: str = "flux"
    """``flux``: the FLUX VAE of ``ae.safetensors``; ``pixels``: latents are the pixels themselves
    (``latent_channels`` 3, ``vae_downsample`` 1: tiny models and toy worlds)."""
    vit: dict[str, Any] | None = field(default=None)
    """The raw SigLIP config of the folder (the understanding encoder is not built here)."""
    folder: str | None = None
    """The release folder this config was read from (its ``ae.safetensors``, files passed through on save)."""

    def __post_init__(self) -> None:
        if self.autoencoder not in AUTOENCODERS:
            raise ValueError(f"BAGEL autoencoder '{self.autoencoder}' is not one of {AUTOENCODERS}")
        if self.autoencoder == "pixels" and (self.latent_channels, self.vae_downsample) != (3, 1):
            raise ValueError("the 'pixels' autoencoder needs latent_channels 3 and vae_downsample 1, got "
                             f"{self.latent_channels} and {self.vae_downsample}")
        if self.image_size is None:
            self.image_size = self.max_latent_size * self.latent_downsample
        side, rest = divmod(self.image_size, self.latent_downsample)
        if rest or not 0 < side <= self.max_latent_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of {self.latent_downsample} pixels "
                             f"per latent token with at most max_latent_size {self.max_latent_size} per side")

    @property
    def grid_side(self) -> int:
        """Latent tokens per image side."""
        return self.image_size // self.latent_downsample

    def geometry(self) -> dict[str, Any]:
        """The latent fields that differ from the official defaults (what ``GEOMETRY_FILE`` holds)."""
        defaults = BagelConfig(llm=self.llm)
        return {name: getattr(self, name) for name in GEOMETRY_FIELDS if getattr(self, name) != getattr(defaults, name)}

    @property
    def patch_dim(self) -> int:
        """Channels of one latent token: a ``p x p`` patch of the VAE latent."""
        return self.latent_patch_size ** 2 * self.latent_channels

    @property
    def latent_downsample(self) -> int:
        """Pixels per latent token side (VAE downsampling times the latent patch)."""
        return self.vae_downsample * self.latent_patch_size

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "BagelConfig":
        """From ``{"llm_config": {...Qwen2 fields}, "latent_channels": ..., ...}`` (a YAML file)."""
        raw = dict(raw)
        llm = raw.pop("llm_config", None)
        if not isinstance(llm, dict):
            raise ValueError("a BAGEL config needs an 'llm_config' mapping of Qwen2 settings")
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__) - {"llm"})
        if unknown:
            raise ValueError(f"unknown BAGEL config keys {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(llm=qwen2_config(llm), **raw)

    @classmethod
    def from_folder(cls, folder: str | Path, **overrides: Any) -> "BagelConfig":
        """From an official checkpoint folder (``llm_config.json``, optional ``vit_config.json``)."""
        folder = Path(folder)
        llm_path = folder / "llm_config.json"
        if not llm_path.is_file():
            raise FileNotFoundError(f"'{folder}' is not a BAGEL folder: '{llm_path.name}' is missing")
        vit_path, geometry_path = folder / "vit_config.json", folder / GEOMETRY_FILE
        vit = json.loads(vit_path.read_text()) if vit_path.is_file() else None
        saved = json.loads(geometry_path.read_text()) if geometry_path.is_file() else {}
        geometry = {name: value for name, value in saved.items() if name in GEOMETRY_FIELDS}
        return cls(llm=qwen2_config(json.loads(llm_path.read_text())), vit=vit, folder=str(folder),
                   **{**geometry, **overrides})


GEOMETRY_FIELDS = ("latent_channels", "vae_downsample", "latent_patch_size", "max_latent_size", "timestep_shift",
                   "image_size", "autoencoder")


def qwen2_config(raw: dict[str, Any]) -> Qwen2Config:
    """A transformers ``Qwen2Config`` from a Qwen2 mapping (an official ``llm_config.json``)."""
    raw = {k: v for k, v in raw.items() if k not in ("architectures", "transformers_version", "model_type")}
    config = Qwen2Config(**raw)
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(f"llm_config: hidden_size {config.hidden_size} is not a multiple of "
                         f"num_attention_heads {config.num_attention_heads}")
    return config
