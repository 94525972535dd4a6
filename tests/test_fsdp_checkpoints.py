"""Sharded FSDP checkpoints: `last.ckpt` is a link swapped atomically to a fully written folder.

FSDP itself cannot run on a CPU-only machine (torch: "FSDP needs a non-CPU accelerator device"),
so this runs ``DecoderLayerFSDP.save_checkpoint`` around a stand-in for FSDP's own shard writer
and tests the swap and Lightning's view of the result; the wrap policy is tested on the real
Janus-Pro architectures in test_recipes.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.fabric.strategies.fsdp import _is_sharded_checkpoint
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.strategies import FSDPStrategy

from unigen.scale.fsdp import DecoderLayerFSDP, swap_symlink


def write_shards(folder: Path, step: int, torn: bool = False) -> None:
    """A sharded checkpoint folder of ``step``; ``torn``: its first shard only."""
    folder.mkdir()
    (folder / "__0_0.distcp").write_bytes(b"shard")
    if not torn:
        torch.save({"global_step": step}, folder / "meta.pt")


class KilledSave(Exception):
    """A save killed after writing part of its shards."""


def fake_fsdp_save(self, checkpoint: dict, filepath, storage_options=None) -> None:
    """Stands in for ``FSDPStrategy.save_checkpoint`` (FSDP needs an accelerator): writes the step's
    shard folder; a checkpoint marked ``killed`` dies after its first shard."""
    write_shards(Path(filepath), checkpoint["global_step"], torn=checkpoint.get("killed", False))
    if checkpoint.get("killed"):
        raise KilledSave


def test_sharded_saves_swap_last_and_a_killed_save_leaves_it_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(FSDPStrategy, "save_checkpoint", fake_fsdp_save)
    strategy = DecoderLayerFSDP(state_dict_type="sharded")  # one process: broadcast and barrier pass through
    last = tmp_path / "last.ckpt"
    strategy.save_checkpoint({"global_step": 2}, last)
    assert last.is_symlink() and _is_sharded_checkpoint(last) and torch.load(last / "meta.pt")["global_step"] == 2
    first = last.resolve()
    assert first.parent == tmp_path and first.name.startswith(".shards-")
    strategy.save_checkpoint({"global_step": 4}, last)
    second = last.resolve()
    assert second != first and not first.exists() and torch.load(last / "meta.pt")["global_step"] == 4
    with pytest.raises(KilledSave):
        strategy.save_checkpoint({"global_step": 6, "killed": True}, last)
    assert last.resolve() == second and torch.load(last / "meta.pt")["global_step"] == 4
    (torn,) = set(tmp_path.glob(".shards-*")) - {second}
    assert not (torn / "meta.pt").exists()  # the killed save's folder, never linked
    assert {p.name for p in tmp_path.iterdir() if ModelCheckpoint.CHECKPOINT_NAME_LAST in p.name} == {"last.ckpt"}
    strategy.remove_checkpoint(last)
    assert not last.is_symlink() and not second.exists()


def test_swap_replaces_a_plain_folder_from_an_older_run(tmp_path):
    last = tmp_path / "last.ckpt"
    write_shards(last, 1)
    new = tmp_path / ".shards-n"
    write_shards(new, 3)
    swap_symlink(last, new)
    assert last.is_symlink() and torch.load(last / "meta.pt")["global_step"] == 3
