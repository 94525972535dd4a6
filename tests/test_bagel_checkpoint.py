"""Official BAGEL folders: the key map, a meta-device load, an exact write-back, the 7B build."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tests.conftest import REPO
from tests.test_bagel_model import LLM, tiny
from unigen.models.bagel import key_map, load_official, official_key, save_official

ONE_LAYER = {
    "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.k_proj.bias",
    "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight", "self_attn.q_norm.weight",
    "self_attn.k_norm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
    "input_layernorm.weight", "post_attention_layernorm.weight"}
"""The official names of one MoT layer's understanding expert; the generation expert adds ``_moe_gen``."""


def official_names() -> set[str]:
    gen = {k.replace("mlp.", "mlp_moe_gen.") if k.startswith("mlp.") else "_moe_gen.".join(k.rsplit(".", 1))
           for k in ONE_LAYER}
    layer = ONE_LAYER | gen
    return ({f"language_model.model.layers.{i}.{k}" for i in range(LLM["num_hidden_layers"]) for k in layer}
            | {"language_model.model.embed_tokens.weight", "language_model.model.norm.weight",
               "language_model.model.norm_moe_gen.weight", "language_model.lm_head.weight",
               "time_embedder.mlp.0.weight", "time_embedder.mlp.0.bias", "time_embedder.mlp.2.weight",
               "time_embedder.mlp.2.bias", "vae2llm.weight", "vae2llm.bias", "llm2vae.weight", "llm2vae.bias",
               "latent_pos_embed.pos_embed"})


def test_the_key_map_covers_every_parameter_one_to_one():
    model = tiny()
    mapping = key_map(model)
    assert set(mapping) == official_names()
    assert sorted(mapping.values()) == sorted(model.state_dict())
    assert official_key("decoder.layers.1.attn.k_norm.gen.weight") == "language_model.model.layers.1.self_attn.k_norm_moe_gen.weight"


@pytest.fixture
def official_folder(tmp_path):
    """A tiny folder in the official layout, with SigLIP tensors we do not build and extra files."""
    model = tiny(seed=1)
    with torch.no_grad():
        model.llm2vae.weight.normal_()
    folder = save_official(model, tmp_path / "official")
    weights = {k: f.get_tensor(k) for f in [safe_open(str(folder / "ema.safetensors"), "pt")] for k in f.keys()}
    weights["vit_model.vision_model.embeddings.patch_embedding.weight"] = torch.randn(8, 12)
    weights["connector.fc1.weight"] = torch.randn(32, 8)
    save_file(weights, str(folder / "ema.safetensors"))
    (folder / "llm_config.json").write_text(json.dumps({**LLM, "architectures": ["Qwen2ForCausalLM"],
                                                        "qk_norm": True, "layer_module": "Qwen2MoTDecoderLayer"}))
    (folder / "vit_config.json").write_text(json.dumps({"hidden_size": 8, "patch_size": 14}))
    save_file({"decoder.conv_in.weight": torch.randn(4, 4)}, str(folder / "ae.safetensors"))
    (folder / "tokenizer.json").write_text("{}")
    return folder, model


def test_an_official_folder_loads_and_writes_back_exactly(official_folder, tmp_path):
    folder, original = official_folder
    model, report = load_official(folder, latent_channels=4, max_latent_size=8)
    assert report.unexpected == [] and report.missing == []
    assert report.not_built == ["connector.fc1.weight", "vit_model.vision_model.embeddings.patch_embedding.weight"]
    assert len(report.loaded) == len(official_names())
    assert model.config.vit == {"hidden_size": 8, "patch_size": 14}
    for name, tensor in original.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert torch.equal(model.decoder.rotary.inv_freq, original.decoder.rotary.inv_freq)
    out = save_official(model, tmp_path / "export", source=folder)
    with safe_open(str(folder / "ema.safetensors"), "pt") as a, safe_open(str(out / "ema.safetensors"), "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        for key in a.keys():
            assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key
    for name in ("llm_config.json", "vit_config.json", "ae.safetensors", "tokenizer.json"):
        assert (out / name).read_bytes() == (folder / name).read_bytes(), name
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


def test_unexpected_and_missing_keys_are_refused_by_name(official_folder):
    folder, _ = official_folder
    weights = {k: f.get_tensor(k) for f in [safe_open(str(folder / "ema.safetensors"), "pt")] for k in f.keys()}
    weights["language_model.model.layers.0.mlp.extra.weight"] = torch.zeros(1)
    del weights["vae2llm.bias"]
    save_file(weights, str(folder / "ema.safetensors"))
    with pytest.raises(ValueError, match=r"unexpected keys \['language_model.model.layers.0.mlp.extra.weight'\], "
                                         r"missing keys \['vae2llm.bias'\]"):
        load_official(folder, latent_channels=4, max_latent_size=8)
    with pytest.raises(FileNotFoundError, match="has no .ema.safetensors."):
        load_official(folder.parent / "nowhere")


def test_the_full_7b_architecture_builds_on_meta_in_under_1_gb():
    """BAGEL-7B-MoT's shapes (two Qwen2.5-7B experts, 14.7B parameters) on the meta device."""
    script = (
        "import resource, torch\n"
        "from unigen.models.bagel import BagelConfig, build, QWEN25_7B\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()\n"
        "config = BagelConfig.from_dict({'llm_config': QWEN25_7B, 'max_latent_size': 64})\n"
        "before = rss(); model = build(config, 'meta'); after = rss()\n"
        "print(sum(p.numel() for p in model.parameters()), after - before)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    params, delta = map(int, out.stdout.split())
    print(f"7B meta build: {params / 1e9:.2f}B parameters, RSS delta {delta / 2**20:.1f} MiB")
    assert 14.0e9 < params < 15.0e9 and delta < 2**30
