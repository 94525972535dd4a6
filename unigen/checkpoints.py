"""Load a unified model for inference from any source: a Lightning checkpoint or a model source."""

from __future__ import annotations

from pathlib import Path

import torch

from unigen.models.unified import UnifiedModel
from unigen.models.loading import load_model


def load_unified(source: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> UnifiedModel:
    """``*.ckpt`` (a unigen Lightning checkpoint) or anything ``load_model`` accepts; eval mode."""
    if Path(source).suffix == ".ckpt":
        from unigen.module import UnifiedLM  # here: the module imports the model loaders

        if not Path(source).is_file():
            raise FileNotFoundError(f"checkpoint '{source}' does not exist")
        net = UnifiedLM.load_from_checkpoint(source, map_location="cpu").net
    else:
        net = load_model(source)
    net = net.to(device=device, dtype=dtype) if dtype is not None else net.to(device)
    return net.eval()
