"""Load a unified model for inference from any source (a Lightning checkpoint, read without the
LightningModule, or a model source), check checkpoint files before a long job opens them, and name
a model by its weights."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import torch

from unigen.lora import LoraSettings, add_lora
from unigen.models.loading import load_model
from unigen.models.unified import UnifiedModel

NET_PREFIX = "net."
"""``UnifiedLM`` keeps its model in ``self.net``: every weight of a unigen checkpoint starts so."""


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
        check_checkpoint_file(source, option)
        net = net_from_checkpoint(source)
    else:
        net = load_model(source)
    net = net.to(device=device, dtype=dtype) if dtype is not None else net.to(device)
    return net.eval()


def net_from_checkpoint(path: str | Path) -> UnifiedModel:
    """The model of a ``UnifiedLM`` checkpoint, without the LightningModule: built as its
    hyper-parameters say (source, frozen parts, attention, prompt template, LoRA adapters), then
    given the checkpoint's ``net.*`` weights (all of them, strictly)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    hparams = checkpoint.get("hyper_parameters") or {}
    if "model" not in hparams:
        raise ValueError(f"checkpoint '{path}' is not a unigen UnifiedLM checkpoint: its hyper_parameters have "
                         f"no 'model' (found {sorted(hparams) or 'none'})")
    options = {key: hparams[key] for key in ("attn_implementation", "prompt_template") if key in hparams}
    net = load_model(hparams["model"], tuple(hparams.get("freeze", ("vision", "vq"))), **options)
    if hparams.get("lora") is not None:
        add_lora(net, LoraSettings.from_dict(hparams["lora"]))
    net.load_state_dict({key[len(NET_PREFIX):]: value for key, value in checkpoint["state_dict"].items()
                         if key.startswith(NET_PREFIX)})
    return net


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (name, dtype, shape, bytes): the model's identity."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}\n".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
