"""Modality-specific loss heads: weighted token cross-entropy for text and for image ids.

Each head returns *sums*, not means: the caller divides by the number of supervised tokens in the
global batch (all ranks, all accumulation steps), so the loss is the same however the batch is split.
Labels are aligned with positions: ``labels[b, t]`` is the id predicted from the hidden state at
``t`` (the next token), ``-100`` where nothing is supervised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE = -100


@dataclass
class HeadOutput:
    """Sums over the supervised tokens of one modality in a (micro-)batch."""

    weighted_loss: torch.Tensor
    """sum over supervised tokens of (per-sample weight x the token's loss: cross-entropy, or a flow head's MSE)."""
    tokens: torch.Tensor
    """number of supervised tokens (unweighted)."""
    predictions: torch.Tensor | None
    """(n_supervised,) argmax ids of the supervised positions (no gradient); None unless asked for."""
    labels: torch.Tensor
    """(n_supervised,) their target ids."""


def weighted_token_ce(
    head: Callable[[torch.Tensor], torch.Tensor],
    hidden: torch.Tensor,
    labels: torch.Tensor,
    token_weight: torch.Tensor,
    chunk_size: int = 0,
    keep_predictions: bool = False,
) -> HeadOutput:
    """Cross-entropy of ``head(hidden)`` against ``labels``, weighted per token, summed.

    Only supervised positions go through the head, so a large text vocabulary costs nothing at
    image positions and vice versa. ``chunk_size`` > 0 runs the head on that many positions at a
    time and recomputes each chunk's logits in backward, so at most one chunk's (chunk, vocab)
    fp32 logits are alive instead of all of them (same loss and gradients). ``keep_predictions``
    also returns the argmax ids (the text head's switch accuracy needs them; the image head does not).
    """
    selected = labels != IGNORE
    targets = labels[selected]
    states = hidden[selected]
    if chunk_size <= 0 or states.shape[0] <= chunk_size:
        parts = [_head_ce(head, states, targets, keep_predictions)]
    else:
        parts = [checkpoint(_head_ce, head, h, t, keep_predictions, use_reentrant=False)
                 for h, t in zip(states.split(chunk_size), targets.split(chunk_size))]
    ce = torch.cat([c for c, _ in parts])
    predictions = torch.cat([p for _, p in parts]) if keep_predictions else None
    return HeadOutput(
        weighted_loss=(ce * token_weight[selected].to(ce.dtype)).sum(),
        tokens=selected.sum(),
        predictions=predictions,
        labels=targets,
    )


def _head_ce(head: Callable[[torch.Tensor], torch.Tensor], states: torch.Tensor, targets: torch.Tensor,
             keep_predictions: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token fp32 cross-entropy of ``head(states)``, and its argmax ids if asked for."""
    logits = head(states).float()
    predictions = logits.detach().argmax(-1) if keep_predictions else None
    return F.cross_entropy(logits, targets, reduction="none"), predictions


def combine(
    text: HeadOutput,
    image: HeadOutput,
    global_text_tokens: torch.Tensor,
    global_image_tokens: torch.Tensor,
    lambda_text: float = 1.0,
    lambda_image: float = 1.0,
) -> torch.Tensor:
    """lambda_text * text_sum / N_text + lambda_image * image_sum / N_image (global counts)."""
    return lambda_text * text.weighted_loss / global_text_tokens.clamp(min=1) + (
        lambda_image * image.weighted_loss / global_image_tokens.clamp(min=1)
    )
