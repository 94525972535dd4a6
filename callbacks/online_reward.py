"""Online rewards: score each training batch during fit with any reward of the offline contract.

The batch's sequences are turned back into trajectories (prompt and reasoning decoded from the
text positions through the model's prompt template, image ids decoded to ``png`` by the model's
own VQ decoder), the reward is called on them, and the values land in the batch's ``rewards`` under
"<modality>/<name>" (NaN where the reward returned None) -- exactly where stored rewards are, so
:class:`callbacks.reward_weighting.RewardWeighting` listed *after* this callback weights by them.
Metadata is not in the batch: rewards that need it return None here.
"""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch

from unigen.data.batch import Batch
from unigen.data.trajectory import Trajectory
from unigen.models.unified import UnifiedModel
from unigen.registry import Spec
from unigen.rewards import REWARDS
from unigen.rewards.contract import checked_values, target_modalities
from unigen.rewards.images import with_decoded_png


def split_prompt(text: str, template: str) -> tuple[str, str]:
    """(prompt, reasoning) from decoded "template(prompt) + reasoning"; ("", text) if it does not match."""
    prefix, _, suffix = template.partition("{prompt}")
    if text.startswith(prefix):
        body = text[len(prefix):]
        cut = body.find(suffix)
        if cut >= 0:
            return body[:cut], body[cut + len(suffix):]
    return "", text


def batch_trajectories(batch: Batch, model: UnifiedModel) -> list[Trajectory]:
    """Rebuild the batch's trajectories (prompt, reasoning, image ids, png) from its tokens (via ``sample_index``)."""
    spec = model.spec
    if any(batch.turns):
        raise ValueError("OnlineReward scores single-image trajectories; this batch has multi-image (interleaved) "
                         "samples: score their turns offline with `run.py score` (docs/rewards.md)")
    out = []
    real = batch.attention_mask.bool()
    for sample, (key, prompt_id) in enumerate(zip(batch.keys, batch.prompt_ids)):
        mine = real & (batch.sample_index == sample)  # padded (one row each) or packed batches alike
        ids, image = batch.input_ids[mine], batch.image_mask[mine]
        boi = (ids == spec.boi_id) & ~image
        stop = int(boi.nonzero()[0]) if boi.any() else len(ids)
        text_ids = [i for i in ids[:stop].tolist() if i not in (spec.bos_id, spec.eos_id, spec.pad_id)]
        decoded = spec.tokenizer.decode(text_ids, skip_special_tokens=False)
        prompt, reasoning = split_prompt(decoded, spec.prompt_template)
        idx = key.rpartition("_")[2]
        out.append(Trajectory(prompt_id, int(idx) if idx.isdigit() else 0, prompt, reasoning,
                              ids[image].cpu().numpy().astype(np.int64)))
    return with_decoded_png(out, model)


class OnlineReward(L.Callback):
    """Compute a reward on every training batch and store it in the batch's ``rewards``."""

    def __init__(self, reward: Spec, name: str = "online"):
        """
        Args:
            reward: any reward of the contract: a short name, an import path or ``{class_path, init_args}``.
            name: stored as "<modality>/<name>" in the batch's ``rewards``.
        """
        self.reward, self.name = REWARDS.build(reward), name
        self.modalities = target_modalities(self.reward, name)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Batch,
                             batch_idx: int) -> None:
        trajectories = batch_trajectories(batch, pl_module.net)
        values = checked_values(self.name, trajectories, self.reward(trajectories))
        tensor = torch.tensor([math.nan if v is None else v for v in values])
        for modality in self.modalities:
            batch.set_reward(f"{modality}/{self.name}", tensor)
        rated = tensor[~tensor.isnan()]
        if len(rated):
            pl_module.log(f"reward/{self.name}", rated.mean(), batch_size=len(rated))
