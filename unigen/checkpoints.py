"""Load a unified model for inference from any source (a Lightning checkpoint or a model source),
check checkpoint files before a long job opens them, and name a model by its weights."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import torch

from unigen.models.unified import UnifiedModel
from unigen.models.loading import load_model


def check_checkpoint_file(path: str | Path, option: str = "checkpoint") -> None:
    """Raise naming ``option`` and ``path`` when a ``.ckpt`` file is missing, truncated or not a
    torch checkpoint (torch saves a zip whose directory sits at the end: a cut file has none).
    Folders (FSDP sharded checkpoints) pass."""
    path = Path(path)
    if path.is_dir():
        return
    if not path.is_file():
        raise FileNotFoundError(f"{option} '{path}' does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip() if path.stat().st_size < (64 << 20) else None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{option} '{path}' is not a readable torch checkpoint (truncated or corrupt: {err})") from None
    if broken is not None:
        raise ValueError(f"{option} '{path}' is corrupt: member '{broken}' fails its CRC check")


def load_unified(source: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                 option: str = "model") -> UnifiedModel:
    """``*.ckpt`` (a unigen Lightning checkpoint) or anything ``load_model`` accepts; eval mode.
    Errors name ``option`` (the setting ``source`` came from) and the file."""
    if Path(source).suffix == ".ckpt":
        from unigen.module import UnifiedLM  # here: the module imports the model loaders

        check_checkpoint_file(source, option)
        net = UnifiedLM.load_from_checkpoint(source, map_location="cpu").net
    else:
        net = load_model(source)
    net = net.to(device=device, dtype=dtype) if dtype is not None else net.to(device)
    return net.eval()


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (name, dtype, shape, bytes): the model's identity."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}\n".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
