"""Inputs of the flow head: timestep embedding, latent position table, latent patches, timesteps."""

from __future__ import annotations

import math

import torch
from torch import nn


class TimestepEmbedder(nn.Module):
    """DiT's timestep embedding: a sinusoid (cosines then sines, 256 channels, max period 10^4) of
    a flow time in [0, 1], then Linear -> SiLU -> Linear (``mlp.0`` and ``mlp.2``)."""

    def __init__(self, hidden_size: int, frequencies: int = 256):
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Sequential(nn.Linear(frequencies, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def sinusoid(self, t: torch.Tensor, max_period: float = 10000.0) -> torch.Tensor:
        half = self.frequencies // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        angles = t.float()[:, None] * freqs[None]
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(N,) times -> (N, hidden)."""
        return self.mlp(self.sinusoid(t).to(self.mlp[0].weight.dtype))


def sincos_table(dim: int, side: int) -> torch.Tensor:
    """(side * side, dim) fixed 2D sin-cos table (MAE / DiT): row ``r * side + c`` holds the
    column ``c`` encoded in the first half and the row ``r`` in the second, each half as
    [sin, cos] of the position times 10^4^(-k / (dim / 4)), computed in float64."""
    if dim % 4:
        raise ValueError(f"the 2D sin-cos table needs a hidden size divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64),
                                indexing="ij")

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega[None]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)

    return torch.cat([encode(cols), encode(rows)], dim=1).float()


class LatentPositionEmbedding(nn.Module):
    """A frozen 2D sin-cos table over a ``max_side x max_side`` grid, indexed by flattened
    position ids ``row * max_side + col`` (``pos_embed``)."""

    def __init__(self, max_side: int, hidden_size: int):
        super().__init__()
        self.max_side = max_side
        self.pos_embed = nn.Parameter(torch.empty(max_side * max_side, hidden_size), requires_grad=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if not self.pos_embed.is_meta:
            with torch.no_grad():
                self.pos_embed.copy_(sincos_table(self.pos_embed.shape[1], self.max_side))

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return self.pos_embed[position_ids]


def latent_position_ids(h: int, w: int, max_side: int) -> torch.Tensor:
    """Flattened grid ids of an ``h x w`` latent block (row-major), as rows of a ``max_side`` grid."""
    if h > max_side or w > max_side:
        raise ValueError(f"a {h}x{w} latent grid exceeds max_latent_size {max_side}")
    return (torch.arange(h)[:, None] * max_side + torch.arange(w)[None]).flatten()


def shift_timesteps(t: torch.Tensor, shift: float) -> torch.Tensor:
    """The flow timestep shift ``s t / (1 + (s - 1) t)`` (s > 1 moves time towards noise)."""
    return shift * t / (1 + (shift - 1) * t)


def sample_timesteps(n: int, shift: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training times of ``n`` latent blocks: ``sigmoid(randn)`` (logit-normal), shifted."""
    return shift_timesteps(torch.sigmoid(torch.randn(n, generator=generator)), shift)


def patchify(latent: torch.Tensor, p: int) -> torch.Tensor:
    """(C, H, W) VAE latent -> (H/p * W/p, p * p * C) tokens, row-major, channels last in a patch."""
    c, h, w = latent.shape
    if h % p or w % p:
        raise ValueError(f"latent {h}x{w} is not divisible by the latent patch size {p}")
    return latent.reshape(c, h // p, p, w // p, p).permute(1, 3, 2, 4, 0).reshape(-1, p * p * c)


def unpatchify(tokens: torch.Tensor, h: int, w: int, p: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: (h * w, p * p * C) tokens of an ``h x w`` grid -> (C, h p, w p)."""
    c = tokens.shape[-1] // (p * p)
    return tokens.reshape(h, w, p, p, c).permute(4, 0, 2, 1, 3).reshape(c, h * p, w * p)
