"""BAGEL (BAGEL-7B-MoT): a Qwen2 Mixture-of-Transformers decoder with a text head and a
rectified-flow latent head, written from the published architecture (docs/models.md)."""

from unigen.models.bagel.checkpoint import LoadReport, build, key_map, load_official, official_key, save_official
from unigen.models.bagel.config import QWEN25_7B, BagelConfig
from unigen.models.bagel.heads import TokenLosses, noised, token_losses
from unigen.models.bagel.layout import PackedBatch, SampleLayout, pack, split_mask
from unigen.models.bagel.model import BagelModel
from unigen.models.bagel.sampling import FlowSchedule, sample_block

__all__ = ["QWEN25_7B", "BagelConfig", "BagelModel", "FlowSchedule", "LoadReport", "PackedBatch", "SampleLayout",
           "TokenLosses", "build", "key_map", "load_official", "noised", "official_key", "pack", "sample_block",
           "save_official", "split_mask", "token_losses"]
