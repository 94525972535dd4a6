"""Pluggable rewards (see docs/rewards.md): the contract, built-in rewards, and reward -> weight schemes.

``REWARDS`` names the built-ins; a reward of your own is named by its import path (see
``unigen.registry``): ``{class_path: my_pkg.rewards.MyReward, init_args: {...}}``.
"""

from unigen.registry import Registry
from unigen.rewards.contract import MODALITIES, Reward, RewardBase, checked_values, combine_values, target_modalities

REWARDS = Registry("reward", {
    "color_match": "unigen.rewards.color_match.ColorMatch",
    "vqa_score": "unigen.rewards.vqa.VQAScore",
    "geneval": "unigen.rewards.geneval.GenEvalScore",
    "reasoning_match": "unigen.rewards.text_match.ReasoningMatch",
    "shapes_strict": "unigen.worlds.shapes.rewards.ShapesImageReward",
    "shapes_geneval": "unigen.worlds.shapes.rewards.shapes_geneval",
    "shapes_plan": "unigen.worlds.shapes.rewards.PlanReward",
})
"""Short name -> reward class (built with its ``init_args``)."""

__all__ = ["MODALITIES", "REWARDS", "Reward", "RewardBase", "checked_values", "combine_values", "target_modalities"]
