"""Rewards -> per-sample loss weights, one modality at a time (pure functions, used by the callback).

Given rewards ``r`` (S,) with NaN where a sample has no reward, and the samples' groups (the whole
batch, or one group per prompt id), a scheme gives weights ``w`` (S,):

- ``off``: 1 for every sample (plain SFT on this modality; rewards ignored).
- ``zero``: 0 for every sample (the modality is not trained).
- ``filter``: 1 for kept samples, 0 otherwise (RAFT). Kept: ``r >= threshold`` and/or the top
  ``ceil(top_fraction * n)`` rated samples of the group (ties broken by batch order).
- ``rwr``: ``exp(r / beta)`` (reward-weighted regression).
- ``advantage``: ``exp(A / beta)`` with ``A = (r - mean_g) / (std_g + eps)`` over the group's
  rated samples (population std; a group with one rated sample or std 0 has ``A = 0``).
- ``linear``: ``max(r, 0)``.
- your own: the import path of a function ``(r, cfg) -> raw weights`` over one group's rated
  rewards (``r``: float64 tensor; ``cfg``: this :class:`ModalityWeighting`).

Then, if ``normalize`` (default: on for ``rwr``, off otherwise), each group's rated weights are
divided by their mean (mean weight 1 per group); then weights are clipped to ``max_weight``.
Samples with no reward are left out of every statistic above and get ``missing``: ``"zero"``
(not trained on this modality), ``"one"`` (trained unweighted) or ``"mean"`` (the mean weight of
the rated samples of their group; 1 if none is rated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

from unigen.registry import Registry

WEIGHTING_SCHEMES = Registry("weighting scheme", {
    "filter": "unigen.rewards.weighting.filter_weights",
    "rwr": "unigen.rewards.weighting.rwr_weights",
    "advantage": "unigen.rewards.weighting.advantage_weights",
    "linear": "unigen.rewards.weighting.linear_weights",
})
"""Short name -> raw-weight function of one group's rated rewards; ``off`` / ``zero`` need no function."""


@dataclass
class ModalityWeighting:
    """How one modality's per-sample weights are computed from its rewards."""

    scheme: str = "off"
    """``off`` | ``zero`` | a short name of ``WEIGHTING_SCHEMES`` | the import path of your own (module docs)."""
    rewards: dict[str, float] = field(default_factory=dict)
    """"<modality>/<name>" -> weight; the sample's reward is the weighted mean of those present."""
    group: Literal["batch", "prompt"] = "batch"
    """Statistics (normalisation, top fraction, advantage) over the batch or per prompt id."""
    beta: float = 1.0
    """Temperature of ``rwr`` / ``advantage``."""
    top_fraction: float | None = None
    """``filter``: keep this fraction of each group's rated samples (highest rewards)."""
    threshold: float | None = None
    """``filter``: keep samples with reward >= threshold."""
    normalize: bool | None = None
    """Divide by the group's mean rated weight; None: True for ``rwr``, False otherwise."""
    max_weight: float | None = None
    """Clip weights to at most this (after normalisation)."""
    missing: Literal["zero", "one", "mean"] = "zero"
    """Weight of samples with no reward (see module docs)."""
    eps: float = 1e-6
    """Added to the group std in ``advantage``."""

    def __post_init__(self) -> None:
        if self.scheme not in ("off", "zero"):
            WEIGHTING_SCHEMES.locate(self.scheme)  # fails early, naming the scheme
        if self.scheme not in ("off", "zero") and not self.rewards:
            raise ValueError(f"scheme '{self.scheme}' needs `rewards` (e.g. {{'image/vqa': 1.0}})")
        bad = [name for name in self.rewards if name.partition("/")[0] not in ("image", "text") or "/" not in name]
        if bad:
            raise ValueError(f"reward names must be '<image|text>/<name>' (as in a batch's rewards), got {bad}")
        if self.scheme == "filter" and self.top_fraction is None and self.threshold is None:
            raise ValueError("scheme 'filter' needs `top_fraction` and/or `threshold`")
        if self.top_fraction is not None and not 0 < self.top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")


def combined_reward(rewards: dict[str, torch.Tensor], weights: dict[str, float], size: int) -> torch.Tensor:
    """Weighted mean over the named reward tensors present per sample; NaN where none is.

    A name absent from the batch counts as absent for every sample.
    """
    total = torch.zeros(size, dtype=torch.float64)
    norm = torch.zeros(size, dtype=torch.float64)
    for name, weight in weights.items():
        if name not in rewards:
            continue
        values = rewards[name].detach().to("cpu", torch.float64)
        present = ~values.isnan()
        total += torch.where(present, values * weight, 0.0)
        norm += present * weight
    return torch.where(norm > 0, total / norm.clamp(min=1e-300), math.nan)


def group_indices(prompt_ids: list[str] | None, size: int, group: str) -> list[torch.Tensor]:
    """Index tensors of the groups: the whole batch, or one per prompt id (first-seen order)."""
    if group == "batch":
        return [torch.arange(size)]
    if prompt_ids is None or len(prompt_ids) != size:
        raise ValueError("group='prompt' needs the batch's prompt_ids, one per sample")
    groups: dict[str, list[int]] = {}
    for i, pid in enumerate(prompt_ids):
        groups.setdefault(pid, []).append(i)
    return [torch.tensor(v) for v in groups.values()]


def filter_weights(r: torch.Tensor, cfg: ModalityWeighting) -> torch.Tensor:
    """RAFT: 1 for kept samples (threshold and/or top fraction), 0 otherwise."""
    keep = torch.ones_like(r, dtype=torch.bool)
    if cfg.threshold is not None:
        keep &= r >= cfg.threshold
    if cfg.top_fraction is not None:
        k = math.ceil(cfg.top_fraction * len(r))
        order = sorted(range(len(r)), key=lambda i: (-float(r[i]), i))
        top = torch.zeros_like(keep)
        top[order[:k]] = True
        keep &= top
    return keep.to(r.dtype)


def linear_weights(r: torch.Tensor, cfg: ModalityWeighting) -> torch.Tensor:
    return r.clamp(min=0)


def advantage_weights(r: torch.Tensor, cfg: ModalityWeighting) -> torch.Tensor:
    std = r.std(unbiased=False) if len(r) > 1 else torch.zeros((), dtype=r.dtype)
    adv = (r - r.mean()) / (std + cfg.eps) if std > 0 else torch.zeros_like(r)
    return torch.exp(adv / cfg.beta)


def rwr_weights(r: torch.Tensor, cfg: ModalityWeighting) -> torch.Tensor:
    shift = r.max() if normalizes(cfg) else 0.0  # cancels in the normalisation, avoids overflow
    return torch.exp((r - shift) / cfg.beta)


def normalizes(cfg: ModalityWeighting) -> bool:
    """Whether groups are normalised to mean weight 1 (default: only ``rwr``)."""
    return cfg.scheme == "rwr" if cfg.normalize is None else cfg.normalize


def scheme_weights(rewards: torch.Tensor, cfg: ModalityWeighting, prompt_ids: list[str] | None = None) -> torch.Tensor:
    """(S,) rewards, NaN = absent -> (S,) float32 weights (see module docs)."""
    size = len(rewards)
    if cfg.scheme == "off":
        return torch.ones(size)
    if cfg.scheme == "zero":
        return torch.zeros(size)
    r = rewards.detach().to("cpu", torch.float64)
    normalize, raw_weights = normalizes(cfg), WEIGHTING_SCHEMES.locate(cfg.scheme)
    weights = torch.full((size,), math.nan, dtype=torch.float64)
    for idx in group_indices(prompt_ids, size, cfg.group):
        rated = idx[~r[idx].isnan()]
        if len(rated) == 0:
            fill = 1.0 if cfg.missing in {"one", "mean"} else 0.0
            weights[idx] = fill
            continue
        w = raw_weights(r[rated], cfg)
        if normalize and w.mean() > 0:
            w = w / w.mean()
        if cfg.max_weight is not None:
            w = w.clamp(max=cfg.max_weight)
        weights[rated] = w
        unrated = idx[r[idx].isnan()]
        weights[unrated] = {"zero": 0.0, "one": 1.0, "mean": float(w.mean())}[cfg.missing]
    return weights.float()


def weight_stats(weights: torch.Tensor) -> dict[str, float]:
    """Mean / min / max, effective sample size (sum w)^2 / sum w^2 and its fraction of the batch."""
    w = weights.double()
    square = float((w * w).sum())
    ess = float(w.sum()) ** 2 / square if square > 0 else 0.0
    return {"mean": float(w.mean()), "min": float(w.min()), "max": float(w.max()),
            "ess": ess, "ess_fraction": ess / len(w), "zero_fraction": float((w == 0).double().mean())}
