"""Named tiny Janus architectures built from a config in code (tests and CPU runs)."""

from __future__ import annotations

import importlib

from transformers import JanusConfig

from unigen.models.janus.tokenizer import byte_level_tokenizer


def tiny_janus_config(
    vocab_size: int,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    image_size: int = 32,
    codebook: int = 256,
    max_positions: int = 512,
    vq_channels: tuple[int, ...] = (1, 1, 2),
) -> JanusConfig:
    """A coherent small Janus: VQ downsampling (4) equals the vision patch size, grid = image_size/4."""
    patch = 4
    side = image_size // patch
    return JanusConfig(
        text_config=dict(
            model_type="llama",
            vocab_size=vocab_size,
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2),
            max_position_embeddings=max_positions,
            tie_word_embeddings=False,
        ),
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=patch,
            projection_dim=hidden,
            num_image_tokens=side * side,
        ),
        vq_config=dict(
            num_embeddings=codebook,
            embed_dim=8,
            latent_channels=32,
            base_channels=32,
            channel_multiplier=list(vq_channels),
            num_res_blocks=1,
            projection_dim=hidden,
            image_token_embed_dim=hidden,
        ),
        image_token_id=0,
        tie_word_embeddings=False,
    )


def _round_up(n: int, multiple: int = 64) -> int:
    return -(-n // multiple) * multiple


PRESETS = {
    "janus-tiny": dict(hidden=64, layers=2, heads=4, image_size=32, codebook=256, max_positions=512),
    "janus-micro": dict(hidden=32, layers=2, heads=4, image_size=16, codebook=64, max_positions=256),
    "shapes-janus": dict(hidden=128, layers=4, heads=4, image_size=32, codebook=256, max_positions=256,
                         vq_channels=(1, 1, 1)),
}
"""``janus-tiny``: ~0.3M-param backbone, 32 px images, 8x8 = 64 image ids. ``janus-micro``: for fast
tests, 16 px images, 4x4 = 16 image ids. ``shapes-janus``: ShapesWorld's base geometry (32 px,
a slimmer VQ whose fitted weights stay small) with the world tokenizer (``PRESET_TOKENIZERS``)."""

PRESET_TOKENIZERS = {"shapes-janus": "unigen.worlds.shapes.text_tokenizer:shapes_tokenizer"}
"""Presets whose tokenizer is not the plain byte-level one: name -> "module:function"."""


def preset_tokenizer(name: str):
    """The tokenizer of a preset (imported lazily so worlds stay optional)."""
    if name not in PRESET_TOKENIZERS:
        return byte_level_tokenizer()
    module, func = PRESET_TOKENIZERS[name].split(":")
    return getattr(importlib.import_module(module), func)()


def build_preset(name: str):
    """Return (JanusConfig, tokenizer) for a named preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset '{name}'; known presets: {sorted(PRESETS)} (or pass a local path)")
    tokenizer = preset_tokenizer(name)
    config = tiny_janus_config(vocab_size=_round_up(len(tokenizer)), **PRESETS[name])
    config.image_token_id = tokenizer.convert_tokens_to_ids(tokenizer.image_token)
    return config, tokenizer
