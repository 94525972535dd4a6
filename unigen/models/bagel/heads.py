"""BAGEL's two training losses from one forward: text cross-entropy and flow-matching MSE.

Flow matching (rectified flow, velocity pointing from data to noise): ``x_t = (1 - t) x0 + t
noise``, target ``noise - x0``, loss the squared error averaged over a token's channels. Each
latent block has one time; clean blocks (``t = 0``) condition and carry no MSE. Reductions follow
the official trainer: CE summed over labelled tokens / their count, MSE summed over noised latent
tokens / their count (the caller all-reduces the counts under data parallelism).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unigen.models.bagel.layout import IGNORE, PackedBatch
from unigen.models.bagel.model import BagelModel


def noised(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(1 - t) x0 + t noise`` with ``t`` one time per token (N,)."""
    return (1 - t[:, None]) * x0 + t[:, None] * noise


@dataclass
class TokenLosses:
    """Per-token losses: ``ce`` over labelled text tokens, ``mse`` over noised latent tokens."""

    ce: torch.Tensor
    mse: torch.Tensor

    def means(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(CE mean, MSE mean); 0 where a head has no token."""
        return tuple(x.sum() / max(x.numel(), 1) for x in (self.ce, self.mse))


def token_losses(model: BagelModel, batch: PackedBatch, x0: torch.Tensor, noise: torch.Tensor,
                 block_t: torch.Tensor) -> TokenLosses:
    """Both heads' per-token losses for clean latents ``x0`` (N, patch_dim), ``noise`` like it and
    one time per latent block ``block_t`` (already shifted; 0 = a clean conditioning block)."""
    t = block_t[batch.block_index]
    hidden = model(batch, noised(x0, noise, t), t)
    labelled = batch.labels != IGNORE
    ce = F.cross_entropy(model.text_logits(hidden[labelled]).float(), batch.labels[labelled], reduction="none")
    velocity = model.velocity(hidden, batch)
    has_mse = t > 0
    mse = ((velocity[has_mse].float() - (noise - x0)[has_mse].float()) ** 2).mean(dim=-1)
    return TokenLosses(ce=ce, mse=mse)
