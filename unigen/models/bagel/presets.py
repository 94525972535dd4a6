"""Named tiny BAGEL architectures built from a config in code (tests and CPU runs)."""

from __future__ import annotations

import importlib

from unigen.models.bagel.adapter import byte_tokenizer
from unigen.models.bagel.config import BagelConfig, qwen2_config

PRESETS = {
    "bagel-micro": dict(hidden=32, layers=2, heads=4, image_size=16, max_positions=256),
    "bagel-tiny": dict(hidden=64, layers=2, heads=4, image_size=32, max_positions=512),
    "shapes-bagel": dict(hidden=128, layers=4, heads=4, image_size=32, max_positions=256),
}
"""Pixel latents in 4x4 patches (48 channels per latent token): ``bagel-micro`` 16 px, 4x4 = 16
latent tokens; ``bagel-tiny`` 32 px, 8x8 = 64; ``shapes-bagel``: ShapesWorld's flow base (the
VQ base's width and depth) with the world tokenizer (``PRESET_TOKENIZERS``)."""

PRESET_TOKENIZERS = {"shapes-bagel": "unigen.worlds.shapes.text_tokenizer:shapes_bagel_tokenizer"}
"""Presets whose tokenizer is not the plain byte-level one: name -> "module:function" (imported
lazily so worlds stay optional)."""


def tiny_bagel_config(vocab_size: int, hidden: int, layers: int, heads: int, image_size: int,
                      max_positions: int) -> BagelConfig:
    """Both experts of a small Qwen2 MoT, pixel latents (no VAE), official flow settings otherwise."""
    llm = qwen2_config(dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2,
                            num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                            max_position_embeddings=max_positions, tie_word_embeddings=False))
    return BagelConfig(llm=llm, latent_channels=3, vae_downsample=1, latent_patch_size=4, max_latent_size=16,
                       image_size=image_size, autoencoder="pixels")


def build_preset(name: str):
    """(BagelConfig, tokenizer) of a named preset."""
    if name in PRESET_TOKENIZERS:
        module, func = PRESET_TOKENIZERS[name].split(":")
        tokenizer = getattr(importlib.import_module(module), func)()
    else:
        tokenizer = byte_tokenizer()
    return tiny_bagel_config(vocab_size=-(-len(tokenizer) // 64) * 64, **PRESETS[name]), tokenizer
