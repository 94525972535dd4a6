"""The fit stage: ``run.py fit`` (the same LightningCLI, YAML configs and overrides) followed by an
export of the fitted model as a transformers folder."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import yaml

from unigen.files import file_sha256
from unigen.pipeline.stage import as_dict, check_settings
from unigen.scale.ranks import barrier, current


class FinalCheckpoint(L.Callback):
    """Save one checkpoint when training ends (on every rank: FSDP saves collectively)."""

    def __init__(self, path: str):
        """
        Args:
            path: the checkpoint file (or sharded folder) to write.
        """
        self.path = path

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(self.path)


@dataclass
class FitSettings:
    """Which ``run.py fit`` configs to run, and the values a pipeline sets in them."""

    config: list[str] = field(default_factory=list)
    """Fit YAMLs, stacked in order as ``run.py fit --config a.yaml --config b.yaml`` (later wins)."""
    out: str = "runs/fit"
    """Output folder: ``trainer.default_root_dir`` (logs, checkpoints) and the fitted model in ``<out>/model``."""
    model: str | None = None
    """Sets ``model.init_args.model`` (the model to start from); None: the config's."""
    train_shards: list[str] | None = None
    """Sets ``data.init_args.train_shards``; None: the config's."""
    seed: int | None = None
    """Sets ``seed_everything``; None: the config's."""
    args: list[str] = field(default_factory=list)
    """Further ``run.py fit`` arguments (dotted overrides such as ``--trainer.max_steps=100``)."""


def data_mode(s: FitSettings) -> str:
    """The ``data.init_args.mode`` the fit trains in: the last of its configs that sets it, then any
    ``--data.init_args.mode`` in ``args`` (later wins); ``unified`` (the DataModule's default) otherwise."""
    mode = "unified"
    for path in s.config:
        data = (yaml.safe_load(Path(path).read_text()) or {}).get("data") or {}
        mode = (data.get("init_args") or {}).get("mode", mode)
    for i, arg in enumerate(s.args):
        name, eq, value = arg.partition("=")
        if name in ("--data.init_args.mode", "--data.mode"):
            mode = value if eq else s.args[i + 1] if i + 1 < len(s.args) else mode
    return mode


def fit_argv(s: FitSettings) -> list[str]:
    """The ``run.py fit`` command line of these settings."""
    argv = ["fit"]
    for path in s.config:
        argv += ["--config", path]
    if s.model is not None:
        argv += ["--model.init_args.model", s.model]
    if s.train_shards is not None:
        argv += ["--data.init_args.train_shards", json.dumps(s.train_shards)]
    if s.seed is not None:
        argv += ["--seed_everything", str(s.seed)]
    final = {"class_path": "unigen.pipeline.fit.FinalCheckpoint", "init_args": {"path": str(Path(s.out) / "final.ckpt")}}
    return argv + ["--trainer.default_root_dir", s.out, f"--trainer.callbacks+={json.dumps(final)}",
                   "--ckpt_path", "latest", *s.args]  # a stage killed mid-fit resumes


def fit(settings: FitSettings) -> Path:
    """Fit with ``run.py fit`` configs, then export the model as a transformers folder.

    The model lands in ``<out>/model`` (a finished one with the same settings is reused); returns that
    folder. Run by every task of an allocation (Slurm, torchrun), the fit spans them all (the config's
    ``trainer.num_nodes`` / ``devices`` must match it) and every task returns once rank 0 has
    exported the model; ranks the fit starts itself (LightningEnvironment) end after it."""
    from unigen.lightning_cli import lightning_cli
    from unigen.export.writer import export_checkpoint

    s = settings
    out, model_dir = Path(s.out), Path(s.out) / "model"
    recorded = {**as_dict(s), "config_sha256": [file_sha256(c) for c in s.config]}
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out / "fit-settings.json", recorded)
    if model_dir.is_dir():  # the export renames a finished folder into place
        return model_dir
    ranks = current()  # before the fit: ranks it starts itself join a process group it makes
    cli = lightning_cli(fit_argv(s))
    if ranks.world == 1 and not cli.trainer.is_global_zero:
        sys.exit(0)  # a rank the fit started (LightningEnvironment): the pipeline goes on in rank 0 only
    if ranks.is_zero:
        final = out / "final.ckpt"
        export_checkpoint(str(final), str(model_dir), overwrite=True)
        shutil.rmtree(final) if final.is_dir() else final.unlink()
    barrier()
    return model_dir
