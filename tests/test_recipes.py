"""The Janus-Pro recipes build at full size on the meta device (no memory, no weights)."""

from __future__ import annotations

import pytest
import torch
import yaml

from tests.scale_helpers import REPO
from unigen.models.loading import load_model
from unigen.scale.fsdp import decoder_layer_policy

SIZES = {"janus_pro_1b": (1.3e9, 2.6e9), "janus_pro_7b": (6.5e9, 8.0e9)}
"""Total parameters (LLM + vision tower + VQ + heads): Janus-Pro-1B ~2.1B, -7B ~7.4B."""


@pytest.mark.parametrize("name", sorted(SIZES))
def test_recipe_model_builds_on_meta_and_wraps_per_decoder_layer(name):
    recipe = yaml.safe_load((REPO / f"configs/{name}/fit.yaml").read_text())
    source = recipe["model"]["init_args"]["model"]
    with torch.device("meta"):
        net = load_model(str(REPO / source))
    total = sum(p.numel() for p in net.parameters())
    low, high = SIZES[name]
    assert low < total < high, f"{name}: {total / 1e9:.2f}B parameters"
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert trainable < total  # vision and VQ frozen
    layer = net.decoder_layer_class()
    assert layer.__name__ == "LlamaDecoderLayer"
    holder = torch.nn.Module()
    holder.net = net
    policy = decoder_layer_policy(holder)
    wrapped = [m for m in net.modules() if type(m) in policy._module_classes]
    assert len(wrapped) == net.hf.config.text_config.num_hidden_layers
    assert net.spec.image.num_tokens == 576 and net.spec.image.codebook_size == 16384
