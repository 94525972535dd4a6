"""Export a unigen Lightning checkpoint as a model folder in the family's layout, atomically.

A BAGEL folder is the official layout (``UnifiedModel.save_pretrained``). A Janus folder holds safetensors weights, ``config.json``, ``generation_config.json`` (special ids,
``generation_kwargs.boi_token_id``, image token count, CFG scale), the tokenizer, the
``JanusProcessor`` files and a ``README.md`` model card. It is built in a hidden temporary folder
beside ``out`` and renamed into place only when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import torch

from unigen.checkpoints import load_unified
from unigen.dtypes import CAST_NAMES, torch_dtype
from unigen.export.card import read_summary, render_card
from unigen.export.checkpoint import (
    CheckpointError,
    check_unified_checkpoint,
    consolidate_sharded,
    is_sharded_checkpoint,
    read_checkpoint,
)
from unigen.lora import has_lora, merge_lora, save_adapter
from unigen.models.unified import UnifiedModel

log = logging.getLogger(__name__)

TRAINING_STATE = ("optimizer_states", "lr_schedulers", "loops", "callbacks")
"""Checkpoint entries only needed to resume training, left out before loading for export."""

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def export_checkpoint(
    ckpt: str,
    out: str,
    summary: str | None = None,
    data_strategy: str | None = None,
    guidance_scale: float = 5.0,
    dtype: Literal["float32", "bfloat16", "float16"] | None = None,
    overwrite: bool = False,
    lora: Literal["merge", "adapter"] = "merge",
) -> Path:
    """Write a unigen checkpoint as a transformers model folder; returns ``out``.

    Raises ``CheckpointError`` for a checkpoint that is not a unigen UnifiedLM or does not fit the
    architecture its hyper-parameters name, ``FileNotFoundError`` for a missing input (checkpoint,
    summary, the tokenizer of a base model folder).

    Args:
        ckpt: a unigen Lightning ``.ckpt`` file, or an FSDP sharded checkpoint folder (consolidated first).
        out: the folder to write (must not exist unless ``overwrite``).
        summary: an evaluation ``summary.json`` to quote in the model card.
        data_strategy: one line on the post-training data (e.g. "targeted prompts, K=4, VQAScore").
        guidance_scale: default classifier-free guidance scale written to the generation config.
        dtype: cast the weights before saving (default: keep the checkpoint's dtype).
        overwrite: replace an existing ``out`` (swapped only once the new folder is complete).
        lora: for a checkpoint trained with LoRA adapters: ``merge`` them into the weights (a plain
            transformers folder) or write the ``adapter`` alone in peft's layout (its base, with the
            tokenizer and processor, is the checkpoint's ``model``).
    """
    ckpt, out = Path(ckpt), Path(out)
    if lora not in ("merge", "adapter"):
        raise ValueError(f"lora '{lora}' is not one of 'merge', 'adapter'")
    cast = torch_dtype(dtype, (None, *CAST_NAMES))
    if out.exists() and not overwrite:
        raise FileExistsError(f"export folder '{out}' already exists (pass overwrite=True / --overwrite)")
    evaluation = read_summary(summary) if summary is not None else None
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.export-") as work:
        ckpt_file, meta = _prepare_checkpoint(ckpt, Path(work))
        net = _load_net(ckpt_file, ckpt, meta["hyper_parameters"]["model"], cast)
        stage = Path(work) / "stage"
        adapter = has_lora(net) and lora == "adapter"
        if adapter:
            save_adapter(net, stage, meta["hyper_parameters"]["model"])
        else:
            if has_lora(net):
                merge_lora(net)
            net.save_pretrained(str(stage), guidance_scale=guidance_scale)
        card = render_card(out.name, meta, str(ckpt), net.spec, guidance_scale, data_strategy,
                           evaluation, None if summary is None else str(summary))
        (stage / "README.md").write_text(card)
        _check_complete(stage, ADAPTER_FILES if adapter else net.saved_files)
        _readable_by_all(stage)
        _move_into_place(stage, out, overwrite)
    log.info("exported %s -> %s", ckpt, out)
    return out


def _checkpoint_file(ckpt: Path, work: Path) -> Path:
    """The ``.ckpt`` file to load: ``ckpt`` itself, or the consolidation of a sharded folder."""
    if is_sharded_checkpoint(ckpt):
        log.info("consolidating FSDP sharded checkpoint %s", ckpt)
        return consolidate_sharded(ckpt, work / "consolidated.ckpt")
    if ckpt.is_dir():
        raise CheckpointError(
            f"'{ckpt}' is a folder but not an FSDP sharded Lightning checkpoint (no meta.pt + .metadata)"
        )
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint '{ckpt}' does not exist")
    if ckpt.suffix != ".ckpt":
        raise CheckpointError(f"'{ckpt}' is not a Lightning checkpoint: expected a '.ckpt' file or a sharded folder")
    return ckpt


def _prepare_checkpoint(ckpt: Path, work: Path) -> tuple[Path, dict]:
    """Check ``ckpt``; return the file to load and its tensor-free metadata (for the model card).

    Lightning's loader reads a whole checkpoint into memory, and AdamW states are twice the
    weights: a checkpoint holding optimizer / loop state is first copied without it. The source
    is memory-mapped, so the copy streams the weights and never reads the optimizer states.
    """
    ckpt_file = _checkpoint_file(ckpt, work)
    checkpoint = read_checkpoint(ckpt_file)
    check_unified_checkpoint(checkpoint, ckpt)
    if any(checkpoint.get(key) for key in TRAINING_STATE):
        ckpt_file = work / "weights.ckpt"
        torch.save({key: value for key, value in checkpoint.items() if key not in TRAINING_STATE}, ckpt_file)
    meta = {key: value for key, value in checkpoint.items() if key not in ("state_dict", *TRAINING_STATE)}
    return ckpt_file, meta


def _load_net(ckpt_file: Path, ckpt: Path, model: str, dtype: torch.dtype | None) -> UnifiedModel:
    """``load_unified`` with errors that name the checkpoint and the architecture it claims."""
    try:
        return load_unified(str(ckpt_file), dtype=dtype)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"checkpoint '{ckpt}' names base model '{model}': {err}") from err
    except RuntimeError as err:
        if "size mismatch" not in str(err) and "state_dict" not in str(err):
            raise
        detail = "\n".join(str(err).splitlines()[:6])
        raise CheckpointError(
            f"checkpoint '{ckpt}' does not fit the architecture of its base model '{model}':\n{detail}"
        ) from err


def _check_complete(folder: Path, required: tuple[str, ...]) -> None:
    missing = [name for name in required if not (folder / name).is_file()]
    if not any(folder.glob("*.safetensors")):
        missing.append("*.safetensors")
    if missing:
        raise RuntimeError(f"export is incomplete, missing {missing} in {folder}")


def _readable_by_all(folder: Path) -> None:
    """Files get the permissions of a plain write (some writers create them owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    for file in folder.iterdir():
        file.chmod(0o666 & ~umask)


def _move_into_place(stage: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished folder to ``out``; an old ``out`` is swapped aside, then deleted."""
    old = None
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"export folder '{out}' appeared while exporting; not replacing it")
        old = stage.parent / "previous"
        os.replace(out, old)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old)
