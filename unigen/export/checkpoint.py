"""Read a unigen Lightning checkpoint for export: consolidate FSDP shards, check it is a UnifiedLM.

Lightning writes a ``.ckpt`` file (single device, DDP, FSDP with ``state_dict_type="full"``) or,
with ``FSDPStrategy(state_dict_type="sharded")``, a directory of ``torch.distributed.checkpoint``
shards plus ``meta.pt``. Both end up as one consolidated ``.ckpt`` file that
``unigen.checkpoints.load_unified`` reads.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

import torch

from unigen.checkpoints import NET_PREFIX

SHARDED_METADATA = "meta.pt"
"""Lightning's FSDP sharded layout: non-tensor state beside the ``.distcp`` shards."""


class CheckpointError(ValueError):
    """The file is not a checkpoint unigen can export (wrong module, wrong architecture, damaged)."""


def is_sharded_checkpoint(path: Path) -> bool:
    """A directory written by Lightning's FSDPStrategy with ``state_dict_type="sharded"``."""
    return path.is_dir() and (path / SHARDED_METADATA).is_file() and (path / ".metadata").is_file()


def consolidate_sharded(folder: Path, out_file: Path) -> Path:
    """Merge an FSDP sharded checkpoint folder into one ``.ckpt`` file Lightning can load.

    Runs on CPU without a process group. Only the model weights are read from the shards (not the
    optimizer states, two to three times their size): what Lightning's ``consolidate_checkpoint``
    does, restricted to the weights (``model`` from FSDP, ``state_dict`` from FSDP2).
    """
    from lightning.pytorch.utilities.consolidate_checkpoint import _format_checkpoint
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys

    try:
        entries = {key.split(".")[0] for key in FileSystemReader(str(folder)).read_metadata().state_dict_metadata}
    except Exception as err:  # torch.distributed.checkpoint wraps reader errors in several types
        raise CheckpointError(f"cannot read the shards of sharded checkpoint '{folder}': {err}") from err
    # FSDP (1) writes the weights under "model", FSDP2 (ModelParallelStrategy) under "state_dict"
    entry = next((name for name in ("model", "state_dict") if name in entries), None)
    if entry is None:
        raise CheckpointError(f"sharded checkpoint '{folder}' has no 'model' or 'state_dict' entry "
                              "(not written by Lightning FSDP)")
    try:
        with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
            warnings.filterwarnings("ignore", message="torch.distributed is unavailable or uninitialized")
            checkpoint = _load_state_dict_from_keys(keys={entry}, checkpoint_id=str(folder))
    except Exception as err:
        raise CheckpointError(f"cannot load the weights of sharded checkpoint '{folder}': {err}") from err
    checkpoint.update(torch.load(folder / SHARDED_METADATA, map_location="cpu", weights_only=False))
    torch.save(_format_checkpoint(checkpoint) if entry == "model" else checkpoint, out_file)
    return out_file


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint dict, tensors memory-mapped (cheap even for a 7B model)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as err:  # torch raises many types for a damaged or foreign file
        raise CheckpointError(f"cannot read checkpoint '{path}': {err}") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"'{path}' is not a Lightning checkpoint (no 'state_dict' entry)")
    return checkpoint


def check_unified_checkpoint(checkpoint: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check the checkpoint was written by ``unigen.module.UnifiedLM``; return its hyper-parameters."""
    from unigen.module import UnifiedLM

    hparams = dict(checkpoint.get("hyper_parameters") or {})
    class_path = hparams.get("_class_path")
    if class_path is not None and not _is_subclass(class_path, UnifiedLM):
        raise CheckpointError(
            f"checkpoint '{path}' was written by {class_path}, not by unigen.module.UnifiedLM (or a subclass)"
        )
    if "model" not in hparams:
        raise CheckpointError(
            f"checkpoint '{path}' is not a unigen UnifiedLM checkpoint: its hyper_parameters have no 'model' "
            f"(found {sorted(hparams) or 'none'})"
        )
    foreign = [key for key in checkpoint["state_dict"] if not key.startswith(NET_PREFIX)]
    if foreign:
        raise CheckpointError(
            f"checkpoint '{path}' is not a unigen UnifiedLM checkpoint: {len(foreign)} weight(s) outside "
            f"'{NET_PREFIX}*', e.g. {foreign[:3]}"
        )
    return hparams


def _is_subclass(class_path: str, base: type) -> bool:
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(cls, type) and issubclass(cls, base)
