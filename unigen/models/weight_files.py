"""Where each tensor of a transformers model folder lives: one ``model.safetensors`` or a sharded index."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open


def safetensors_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Tensor name -> (the file holding it, its name there): ``model.safetensors`` or a sharded index."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return {name: (folder / file, name) for name, file in json.loads(index.read_text())["weight_map"].items()}
    single = folder / "model.safetensors"
    if not single.is_file():
        raise FileNotFoundError(f"no model.safetensors or model.safetensors.index.json in '{folder}'")
    with safe_open(single, framework="pt") as f:
        return {name: (single, name) for name in f.keys()}
