"""Lightning's own command line for unigen: ``run.py fit|validate|test|predict``.

``LightningCLI`` in omegaconf mode with subclass mode for model and data, unigen's resume rules and
one-line config errors. Both ``unigen.cli`` (the command table) and the fit stage
(``unigen.pipeline.fit``) run it from here.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import lightning as L
from jsonargparse import set_docstring_parse_options
from lightning.pytorch.cli import LightningCLI

from unigen.checkpoints import check_checkpoint_file
from unigen.errors import config_error
from unigen.module import UnifiedLM
from unigen.scale.resume import LATEST, LIGHTNING_KEYWORDS, resolve_ckpt_path

LIGHTNING_COMMANDS = {
    "fit": "Train a model (reward-weighted post-training) from --config <fit.yaml>",
    "validate": "Run one evaluation epoch on the validation set",
    "test": "Run one evaluation epoch on the test set",
    "predict": "Run inference on the predict set",
}
"""Lightning's subcommands (``UnigenCLI``)."""

set_docstring_parse_options(attribute_docstrings=True)


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


@contextmanager
def _command_line(argv: list[str]):
    """``sys.argv`` as if ``run.py <argv>`` had been typed (Lightning re-launches workers from it)."""
    saved = sys.argv
    sys.argv = [saved[0] if saved else "run.py", *argv]
    try:
        yield
    finally:
        sys.argv = saved


def lightning_cli(argv: list[str]) -> UnigenCLI:
    """Run ``run.py fit|validate|test|predict <argv...>`` exactly as typed; returns the finished CLI."""
    with _command_line(argv):
        return UnigenCLI(
            UnifiedLM,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            parser_kwargs={"parser_mode": "omegaconf"},
            save_config_kwargs={"overwrite": True},
        )
