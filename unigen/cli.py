"""The ``run.py`` command line.

Training subcommands (``fit``, ``validate``, ``test``) are Lightning's own ``LightningCLI`` in
omegaconf mode with subclass mode for model and data. The method's pipeline stages are separate
commands registered in ``PIPELINE_COMMANDS`` (name -> "module:function"); each function takes the
remaining argv and builds its own jsonargparse parser, so they share the YAML/override syntax.
"""

from __future__ import annotations

import importlib
import sys

import lightning as L
from lightning.pytorch.cli import LightningCLI

from unigen.module import UnifiedLM
from unigen.scale.resume import resolve_ckpt_path

PIPELINE_COMMANDS: dict[str, str] = {
    "synthesize": "unigen.data.synthesize:main",
    "generate": "unigen.pipeline.generate:main",
    "score": "unigen.rewards.scoring:main",
    "evaluate": "unigen.evals.runner:main",
    "target": "unigen.evals.targeting:main",
    "export": "unigen.pipeline.export:main",
    "shapes-vq": "unigen.worlds.shapes.build:vq_main",
    "shapes-data": "unigen.worlds.shapes.build:data_main",
    "loop": "unigen.worlds.shapes.loop:main",
}
"""Pipeline stages beside Lightning's subcommands: add a line here to add a command."""


class UnigenCLI(LightningCLI):
    """LightningCLI with unigen's defaults (omegaconf interpolation, re-runnable config saving)."""

    def before_fit(self) -> None:
        """``--ckpt_path latest`` -> the newest requeue/last checkpoint, or a fresh start."""
        config = self.config_init[self.subcommand]
        config.ckpt_path = resolve_ckpt_path(config.get("ckpt_path"), self.trainer)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PIPELINE_COMMANDS:
        module, func = PIPELINE_COMMANDS[argv[0]].split(":")
        getattr(importlib.import_module(module), func)(argv[1:])
        return
    UnigenCLI(
        UnifiedLM,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_kwargs={"parser_mode": "omegaconf"},
        save_config_kwargs={"overwrite": True},
        args=argv,
    )
