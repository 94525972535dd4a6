"""Official BAGEL checkpoint folders: the key map, a meta-device load and a write-back.

Layout: ``llm_config.json`` (Qwen2), ``vit_config.json`` (SigLIP), ``ema.safetensors`` (all
weights, one file), ``ae.safetensors`` (FLUX VAE), tokenizer files.

Key map (ours -> official), applied per dotted name:

| ours | official |
|---|---|
| ``decoder.`` | ``language_model.model.`` |
| ``lm_head.`` | ``language_model.lm_head.`` |
| ``layers.N.attn.{q,k,v,o}.und`` / ``.gen`` | ``layers.N.self_attn.{q,k,v,o}_proj`` / ``..._moe_gen`` |
| ``layers.N.attn.{q,k}_norm.und`` / ``.gen`` | ``layers.N.self_attn.{q,k}_norm`` / ``..._moe_gen`` |
| ``layers.N.input_norm.und`` / ``.gen`` | ``layers.N.input_layernorm`` / ``..._moe_gen`` |
| ``layers.N.post_norm.und`` / ``.gen`` | ``layers.N.post_attention_layernorm`` / ``..._moe_gen`` |
| ``layers.N.mlp.und`` / ``.gen`` | ``layers.N.mlp`` / ``mlp_moe_gen`` |
| ``decoder.norm.und`` / ``.gen`` | ``language_model.model.norm`` / ``norm_moe_gen`` |
| ``time_embedder``, ``vae2llm``, ``llm2vae``, ``latent_pos_embed`` | the same |

Not built here (kept in the file, passed through on save): the SigLIP understanding encoder and
its connector (``NOT_BUILT``). Missing keys allowed: none (the frozen sin-cos table
``latent_pos_embed.pos_embed`` is recomputed if a folder lacks it).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

from unigen.files import atomic_write_bytes, atomic_write_text
from unigen.models.bagel.config import BagelConfig
from unigen.models.bagel.model import BagelModel

WEIGHTS = "ema.safetensors"
NOT_BUILT = ("vit_model.", "connector.", "vit_pos_embed.")
"""Official key prefixes of the SigLIP understanding encoder (not needed for text-to-image)."""
RECOMPUTED = ("latent_pos_embed.pos_embed",)
ROUTED = {"attn.q": "self_attn.q_proj", "attn.k": "self_attn.k_proj", "attn.v": "self_attn.v_proj",
          "attn.o": "self_attn.o_proj", "attn.q_norm": "self_attn.q_norm", "attn.k_norm": "self_attn.k_norm",
          "input_norm": "input_layernorm", "post_norm": "post_attention_layernorm", "mlp": "mlp", "norm": "norm"}
"""Our routed module (relative to a layer, or ``norm`` of the decoder) -> the official module."""


def official_key(key: str) -> str:
    """The official state-dict name of one of our parameter names."""
    for prefix, official in (("decoder.", "language_model.model."), ("lm_head.", "language_model.lm_head.")):
        if key.startswith(prefix):
            key = official + key[len(prefix):]
            break
    for ours, theirs in ROUTED.items():
        for expert, suffix in (("und", ""), ("gen", "_moe_gen")):
            tag = f".{ours}.{expert}."
            if tag in key:
                return key.replace(tag, f".{theirs}{suffix}.")
    return key


def key_map(model: BagelModel) -> dict[str, str]:
    """Official key -> our key, for every entry of our state dict (fails on a collision)."""
    mapping = {official_key(k): k for k in model.state_dict()}
    if len(mapping) != len(model.state_dict()):
        raise RuntimeError("two of our parameters map to one official key")
    return mapping


@dataclass
class LoadReport:
    """What a load did with the file's keys."""

    loaded: list[str] = field(default_factory=list)
    not_built: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def build(config: BagelConfig, device: str | torch.device = "cpu") -> BagelModel:
    """A randomly initialised model (on ``meta``: shapes only, no memory)."""
    with torch.device(device):
        return BagelModel(config)


def load_official(folder: str | Path, dtype: torch.dtype | None = None, strict: bool = True,
                  **overrides) -> tuple[BagelModel, LoadReport]:
    """Load an official folder: build on the meta device, then materialise each parameter from
    ``ema.safetensors`` as it is read. ``strict`` refuses unexpected or missing keys by name."""
    folder = Path(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"BAGEL folder '{folder}' has no '{WEIGHTS}'")
    model = build(BagelConfig.from_folder(folder, **overrides), "meta")
    mapping, report, state = key_map(model), LoadReport(), {}
    with safe_open(str(weights), framework="pt") as f:
        for key in f.keys():
            if key in mapping:
                tensor = f.get_tensor(key)
                state[mapping[key]] = tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
                report.loaded.append(key)
            elif key.startswith(NOT_BUILT):
                report.not_built.append(key)
            else:
                report.unexpected.append(key)
    report.missing = sorted(set(mapping.values()) - set(state) - set(RECOMPUTED))
    if strict and (report.unexpected or report.missing):
        raise ValueError(f"'{weights}': unexpected keys {report.unexpected[:8]}, missing keys {report.missing[:8]}")
    model.load_state_dict(state, strict=False, assign=True)
    finish_materialising(model, dtype)
    return model, report


def finish_materialising(model: BagelModel, dtype: torch.dtype | None) -> None:
    """Recompute what a checkpoint does not hold: the rotary frequencies and, if absent, the
    sin-cos table; refuse a model that still has a meta tensor."""
    with torch.device("cpu"):
        model.decoder.rotary = Qwen2RotaryEmbedding(model.config.llm)
    table = model.latent_pos_embed
    if table.pos_embed.is_meta:
        table.pos_embed = torch.nn.Parameter(torch.empty(table.pos_embed.shape, dtype=dtype), requires_grad=False)
        table.reset_parameters()
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"parameters left unloaded on the meta device: {left[:8]}")


def official_state(model: BagelModel) -> dict[str, torch.Tensor]:
    """Our state dict under the official names (tensors shared, not copied)."""
    return {official_key(k): v.detach() for k, v in model.state_dict().items()}


def save_official(model: BagelModel, folder: str | Path, source: str | Path | None = None) -> Path:
    """Write ``model`` as an official folder. With ``source`` (the folder it was loaded from), the
    encoder tensors it did not build pass through from there and ``vit_config.json``,
    ``ae.safetensors``, tokenizer files and ``llm_config.json`` are copied as they are."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = official_state(model)
    if source is not None:
        source = Path(source)
        with safe_open(str(source / WEIGHTS), framework="pt") as f:
            state.update({k: f.get_tensor(k) for k in f.keys() if k.startswith(NOT_BUILT)})
        for path in sorted(source.iterdir()):
            if path.is_file() and path.name != WEIGHTS:
                shutil.copy2(path, folder / f".{path.name}.tmp")
                (folder / f".{path.name}.tmp").replace(folder / path.name)
    else:
        atomic_write_text(folder / "llm_config.json", json.dumps(model.config.llm.to_dict(), indent=2))
    state = {k: v.contiguous() for k, v in sorted(state.items())}
    atomic_write_bytes(folder / WEIGHTS, safetensors_bytes(state, metadata={"format": "pt"}))
    return folder
