"""Resolve a model source string to a spec (cheap) and a model (weights).

A source is one of:
- a preset name (``janus-tiny``, ``bagel-tiny``): random init from a config in code;
- a YAML file with a full architecture config (``configs/models/janus_pro_7b.yaml``): random
  init, e.g. for meta-device builds or from-scratch runs; an optional ``tokenizer`` key names a
  tokenizer folder;
- a folder in transformers format (a real checkpoint or a unigen export): ``from_pretrained``;
  or in a family's official layout (a BAGEL release: ``llm_config.json`` + ``ema.safetensors``),
  which its adapter recognises (``official_layout``) and reads.

The config's ``model_type`` picks the adapter in ``MODELS`` (an architecture YAML may name an
adapter of your own by import path instead).

A random init is seeded from the source itself (:func:`init_seed`: the preset name, or the YAML
file's architecture), under a forked RNG: a source names one model, the same in every process
(``fit``, ``generate`` and its resume, ``score``'s decoder), and loading it leaves the caller's
random stream untouched.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import yaml

from unigen.models.bagel import presets as bagel_presets
from unigen.models.janus import presets as janus_presets
from unigen.models.unified import TokenSpec, UnifiedModel
from unigen.registry import Registry

MODELS = Registry("model adapter", {"janus": "unigen.models.janus.adapter.JanusUnified",
                                    "bagel": "unigen.models.bagel.adapter.BagelUnified"})
"""transformers ``model_type`` -> adapter class (a :class:`UnifiedModel` with ``config_class``,
``hf_class``, ``token_spec``, ``load_tokenizer`` and ``default_tokenizer``). Emu3 / Chameleon
adapters register here."""


def adapter_class(model_type: str, source: str) -> type[UnifiedModel]:
    """The adapter of a ``model_type`` (a short name of ``MODELS`` or an import path)."""
    if model_type not in MODELS.short_names and "." not in model_type:
        raise ValueError(f"model '{source}' has model_type '{model_type}'; unigen supports {sorted(MODELS.short_names)}")
    return MODELS.locate(model_type)


def build_preset(name: str) -> tuple[Any, Any]:
    """(config, tokenizer) of a named tiny architecture of any family."""
    for family in (janus_presets, bagel_presets):
        if name in family.PRESETS:
            return family.build_preset(name)
    known = sorted([*janus_presets.PRESETS, *bagel_presets.PRESETS])
    raise ValueError(f"unknown model preset '{name}'; known presets: {known} (or pass a local path)")


def folder_model_type(folder: Path) -> str:
    """The ``model_type`` of a model folder: its ``config.json``'s, or the family whose official
    layout it is."""
    config = folder / "config.json"
    if config.is_file():
        return json.loads(config.read_text()).get("model_type", "")
    for name in MODELS.short_names:
        if MODELS.locate(name).official_layout(folder):
            return name
    raise FileNotFoundError(f"model folder '{folder}' has no config.json and is in no official layout unigen reads "
                            f"({sorted(MODELS.short_names)})")


def resolve_config(source: str) -> tuple[Any, Any, bool]:
    """Return (config, tokenizer, is_pretrained) without touching weights."""
    path = Path(source)
    if path.is_dir():
        adapter = adapter_class(folder_model_type(path), source)
        return adapter.folder_config(source), adapter.load_tokenizer(source), True
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise FileNotFoundError(f"model config file '{source}' does not exist")
        raw = yaml.safe_load(path.read_text()) or {}
        model_type = raw.pop("model_type", "janus")
        tokenizer_path = raw.pop("tokenizer", None)
        adapter = adapter_class(model_type, source)
        config = adapter.config_from_dict(raw)
        tokenizer = adapter.load_tokenizer(tokenizer_path) if tokenizer_path else adapter.default_tokenizer()
        return config, tokenizer, False
    if path.suffix or "/" in source:
        raise FileNotFoundError(f"model path '{source}' is neither a folder nor a YAML config file")
    config, tokenizer = build_preset(source)
    return config, tokenizer, False


def init_seed(source: str) -> int:
    """The seed of a random-init source: from the preset name or the YAML file's parsed content."""
    path = Path(source)
    identity = json.dumps(yaml.safe_load(path.read_text()), sort_keys=True) if path.is_file() else source
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "little")


def load_spec(source: str, prompt_template: str | None = None) -> TokenSpec:
    """The model's TokenSpec (tokenizer, special ids, image geometry); loads no weights."""
    config, tokenizer, _ = resolve_config(source)
    return adapter_class(config.model_type, source).token_spec(config, tokenizer, prompt_template)


def load_model(
    source: str,
    freeze: tuple[str, ...] = ("vision", "vq"),
    attn_implementation: str = "sdpa",
    dtype: torch.dtype | None = None,
    prompt_template: str | None = None,
) -> UnifiedModel:
    """Build the unified model for ``source`` (random init for presets/YAML, weights for folders)."""
    config, tokenizer, pretrained = resolve_config(source)
    adapter = adapter_class(config.model_type, source)
    if pretrained:
        hf = adapter.pretrained(source, dtype, attn_implementation)
    else:
        config._attn_implementation = attn_implementation
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed(source))
            hf = adapter.hf_class(config)
        if dtype is not None:
            hf = hf.to(dtype)
    return adapter(hf, adapter.token_spec(config, tokenizer, prompt_template), freeze=tuple(freeze))
