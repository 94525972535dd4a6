"""Pluggable rewards (see docs/rewards.md): the contract, built-in rewards, and reward -> weight schemes.

Built-ins are imported lazily by name (``unigen.rewards.VQAScore``) so importing the contract stays cheap.
"""

from unigen.rewards.contract import MODALITIES, Reward, RewardBase, checked_values, combine_values, target_modalities

_LAZY = {
    "VQAScore": "unigen.rewards.vqa",
    "GenEvalScore": "unigen.rewards.geneval",
    "ReasoningMatch": "unigen.rewards.text_match",
}

__all__ = ["MODALITIES", "Reward", "RewardBase", "checked_values", "combine_values", "target_modalities", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unigen.rewards' has no attribute '{name}'")
