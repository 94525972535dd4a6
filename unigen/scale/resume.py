"""Where ``fit`` checkpoints live, and ``--ckpt_path latest`` / ``--fresh``: resume or refuse, never restart silently.

Checkpoint folders: a ``ModelCheckpoint`` without ``dirpath`` would write into the logger's
folder, ``<save_dir>/<name>/version_<N>/checkpoints``, and a TensorBoard logger opens a new
``version_<N+1>`` each run, so a restarted run would look for its checkpoints in an empty folder.
:func:`pin_checkpoint_dirs` gives every such callback ``<default_root_dir>/checkpoints``: one
folder per experiment, the same in every run. Local saves through Lightning's default writer are
made atomic (``unigen.scale.checkpoint_io.AtomicCheckpointIO``), so a kill during a save leaves
the previous ``last.ckpt``, never a torn one.

``latest``: Lightning resumes from ``hpc_ckpt_<n>.ckpt`` (written on the SLURM requeue signal) only
when no ``ckpt_path`` is given, and from ``last.ckpt`` only with ``--ckpt_path last``. A job
requeued after a node failure has no requeue checkpoint, one requeued after the signal has a newer
one than ``last``: ``latest`` picks the newest checkpoint of the config's checkpoint folders and
requeue checkpoints (a ``ModelCheckpoint`` without ``save_last`` still counts), and starts fresh
when the experiment has no checkpoint at all, so one sbatch line serves the first start and every
restart.

Refusals (:func:`resolve_ckpt_path`): when the experiment already holds checkpoints (in its
checkpoint folders, as requeue checkpoints, or in the logger's versioned folders of an older
layout), a ``fit`` that would start from step 0 (no ``ckpt_path``, or ``latest`` finding nothing
where this config writes) stops with an error naming them. ``--fresh`` starts over on purpose: the
earlier checkpoints are moved aside into ``<default_root_dir>/replaced-<UTC time>/`` so no later
``latest`` can pick one of them up.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_info

from unigen.scale.checkpoint_io import AtomicCheckpointIO

LATEST = "latest"
LIGHTNING_KEYWORDS = ("last", "hpc", "registry")
REPLACED_PREFIX = "replaced-"


class ResumeError(RuntimeError):
    """A fit that would restart silently or resume from the wrong place."""


def checkpoint_callbacks(trainer: L.Trainer) -> list[ModelCheckpoint]:
    return [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]


def pin_checkpoint_dirs(trainer: L.Trainer) -> None:
    """Give each ``ModelCheckpoint`` without ``dirpath`` ``<default_root_dir>/checkpoints`` (not the
    logger's version folder), and make saves through Lightning's default writer atomic."""
    for callback in checkpoint_callbacks(trainer):
        if callback.dirpath is None:
            callback.dirpath = os.path.realpath(os.path.join(trainer.default_root_dir, "checkpoints"))
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()


def resume_candidates(trainer: L.Trainer) -> list[Path]:
    """Checkpoints this config resumes from: every ``*.ckpt`` in its checkpoint folders and
    ``hpc_ckpt_*.ckpt`` in ``default_root_dir``."""
    found = set(Path(trainer.default_root_dir).glob("hpc_ckpt_*.ckpt"))
    for callback in checkpoint_callbacks(trainer):
        found |= set(Path(callback.dirpath).glob("*.ckpt"))
    return sorted(p for p in found if p.is_file())


def earlier_checkpoints(trainer: L.Trainer) -> list[Path]:
    """Every ``*.ckpt`` the experiment holds where Lightning writes: its checkpoint folders (pinned by
    :func:`pin_checkpoint_dirs` first), ``default_root_dir`` and the loggers' versioned folders
    (``<save_dir>/<name>/*/checkpoints``)."""
    folders = {Path(trainer.default_root_dir)}
    folders |= {Path(cb.dirpath) for cb in checkpoint_callbacks(trainer)}
    for logger in trainer.loggers:
        if logger.save_dir is not None and logger.name:
            folders |= set((Path(logger.save_dir) / str(logger.name)).glob("*/checkpoints"))
    return sorted(p for folder in folders for p in folder.glob("*.ckpt") if p.is_file())


def latest_checkpoint(trainer: L.Trainer) -> str | None:
    """The newest resume candidate, or None."""
    candidates = resume_candidates(trainer)
    return str(max(candidates, key=lambda p: p.stat().st_mtime)) if candidates else None


def _listing(paths: list[Path]) -> str:
    shown = ", ".join(f"'{p}'" for p in paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def move_aside(trainer: L.Trainer, paths: list[Path]) -> Path:
    """Move ``paths`` into ``<default_root_dir>/replaced-<UTC time>/`` (``--fresh``); returns that folder."""
    target = Path(trainer.default_root_dir) / f"{REPLACED_PREFIX}{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    target.mkdir(parents=True, exist_ok=True)
    root = Path(trainer.default_root_dir).resolve()
    for path in paths:
        resolved = path.resolve()
        moved = target / (resolved.relative_to(root) if resolved.is_relative_to(root) else path.name)
        moved.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), moved)
    return target


def resolve_ckpt_path(ckpt_path: str | None, trainer: L.Trainer, fresh: bool = False) -> str | None:
    """The checkpoint ``fit`` starts from (None: step 0), after pinning the checkpoint folders.

    ``latest`` -> the newest resume candidate; paths and Lightning's own keywords pass through. Raises :class:`ResumeError` where the run would start
    from step 0 beside an earlier run's checkpoints, unless ``fresh``.
    """
    pin_checkpoint_dirs(trainer)
    if fresh and ckpt_path is not None:
        raise ResumeError(f"--fresh starts from step 0; it cannot be combined with --ckpt_path '{ckpt_path}'")
    if ckpt_path is not None and ckpt_path != LATEST:
        return ckpt_path
    found = latest_checkpoint(trainer) if ckpt_path == LATEST else None
    if found:
        rank_zero_info(f"--ckpt_path latest: resuming from {found}")
        return found
    earlier = earlier_checkpoints(trainer)
    if earlier and fresh:
        if trainer.is_global_zero:
            rank_zero_info(f"--fresh: moved the earlier checkpoints aside into {move_aside(trainer, earlier)}")
    elif earlier:
        where = ", ".join(sorted({str(Path(cb.dirpath)) for cb in checkpoint_callbacks(trainer)})) or "nowhere"
        hint = ("--ckpt_path latest found no checkpoint where this config writes (" + where + ")"
                if ckpt_path == LATEST else "this fit would start from step 0")
        raise ResumeError(f"{hint}, but the experiment holds earlier checkpoints: {_listing(earlier)}. Resume one "
                          "with --ckpt_path <file>, or pass --fresh to start over (moves them aside)")
    rank_zero_info(f"{'--ckpt_path latest: no checkpoint yet' if ckpt_path == LATEST else 'fit'}: starting from step 0")
    return None
