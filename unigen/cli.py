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

from unigen.checkpoints import check_checkpoint_file
from unigen.errors import config_error
from unigen.module import UnifiedLM
from unigen.scale.resume import LATEST, LIGHTNING_KEYWORDS, resolve_ckpt_path

PIPELINE_COMMANDS: dict[str, str] = {
    "synthesize": "unigen.data.synthetic:main",
    "generate": "unigen.generation.command:main",
    "score": "unigen.rewards.command:main",
    "evaluate": "unigen.benchmarks.evaluation:main",
    "target": "unigen.benchmarks.targeting:main",
    "export": "unigen.export.command:main",
    "shapes-vq": "unigen.worlds.shapes.commands:vq_main",
    "shapes-data": "unigen.worlds.shapes.commands:data_main",
    "loop": "unigen.worlds.shapes.loop:main",
}
"""Pipeline stages beside Lightning's subcommands: add a line here to add a command."""


class UnigenCLI(LightningCLI):
    """LightningCLI with unigen's defaults (omegaconf interpolation, re-runnable config saving) and
    resume rules (``unigen.scale.resume``)."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--fresh", type=bool, default=False,
                            help="fit: start from step 0 although the experiment holds checkpoints (moved aside)")

    def instantiate_classes(self) -> None:
        """Build model, data, trainer; an invalid config value becomes one line naming file and line."""
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, KeyError) as err:
            files = [str(path) for path in self.config[self.subcommand].get("config") or []]
            raise config_error(err, files) from None

    def _parse_ckpt_path(self) -> None:
        """Check a ``--ckpt_path`` file before Lightning reads its hyperparameters (an error names it)."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path != LATEST and ckpt_path not in LIGHTNING_KEYWORDS:
            check_checkpoint_file(ckpt_path, "--ckpt_path")
        super()._parse_ckpt_path()

    def before_fit(self) -> None:
        """Pin checkpoint folders; ``--ckpt_path latest`` -> the newest requeue/last checkpoint; refuse
        a silent restart beside earlier checkpoints unless ``--fresh``."""
        config = self.config_init[self.subcommand]
        config.ckpt_path = resolve_ckpt_path(config.get("ckpt_path"), self.trainer, bool(config.get("fresh")))


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
