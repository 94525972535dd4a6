"""Reward re-weighting: stored rewards -> per-sample text / image loss weights, every training batch.

Runs in ``on_train_batch_start``, i.e. before ``training_step`` calls the loss heads, and sets the
batch's per-sample text and image weights (:meth:`~unigen.data.batch.Batch.set_weights`) from its
``rewards`` ("<modality>/<name>" -> (S,), NaN = absent) and ``prompt_ids``. Each modality has its own
:class:`~unigen.rewards.weighting.ModalityWeighting` (scheme, rewards and their weights, grouping,
missing-reward treatment). Logs ``reward_weight/<modality>/{mean,min,max,ess,ess_fraction,zero_fraction}``.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from unigen.data.batch import Batch
from unigen.rewards.weighting import ModalityWeighting, combined_reward, scheme_weights, weight_stats


def apply_weights(batch: Batch, text: ModalityWeighting, image: ModalityWeighting) -> dict[str, dict[str, float]]:
    """Set the batch's text and image weights; return their statistics."""
    stats = {}
    for modality, cfg in (("text", text), ("image", image)):
        rewards = combined_reward(batch.rewards, cfg.rewards, batch.num_samples)
        weights = scheme_weights(rewards, cfg, batch.prompt_ids)
        batch.set_weights(modality, weights)
        stats[modality] = weight_stats(weights)
        stats[modality]["rated_fraction"] = float((~rewards.isnan()).double().mean())
    return stats


class RewardWeighting(L.Callback):
    """Turn each training batch's rewards into per-sample, per-modality loss weights."""

    def __init__(self, text: ModalityWeighting | None = None, image: ModalityWeighting | None = None):
        """
        Args:
            text: weighting of the text (reasoning + switch token) loss; default ``off`` (weight 1).
            image: weighting of the image-token loss; default ``off`` (weight 1).
        """
        self.text = text or ModalityWeighting()
        self.image = image or ModalityWeighting()
        self._warned: set[str] = set()

    def _warn_absent(self, batch: Batch) -> None:
        """Warn once per configured reward name a batch does not carry (a typo would zero every weight)."""
        present = set(batch.rewards)
        for cfg in (self.text, self.image):
            for name in set(cfg.rewards) - present - self._warned:
                self._warned.add(name)
                rank_zero_warn(f"RewardWeighting: reward '{name}' is not in this batch (it has {sorted(present)}); "
                               f"its samples get the `missing` weight '{cfg.missing}'")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Batch,
                             batch_idx: int) -> None:
        self._warn_absent(batch)
        stats = apply_weights(batch, self.text, self.image)
        flat = {f"reward_weight/{mod}/{k}": v for mod, named in stats.items() for k, v in named.items()}
        pl_module.log_dict({k: torch.tensor(v) for k, v in flat.items()}, batch_size=batch.num_samples)
