"""The ``run.py`` command line: one table of commands.

``fit`` / ``validate`` / ``test`` / ``predict`` are Lightning's own ``LightningCLI`` in omegaconf
mode with subclass mode for model and data. Every other command is a line of ``COMMANDS``: a
pipeline stage (a function over a settings dataclass, see ``unigen.pipeline.stage``) or a
function taking the remaining command line. All share the YAML/override syntax; attribute
docstrings are the ``--help`` of each option.
"""

from __future__ import annotations

import inspect
import sys
from contextlib import contextmanager
from dataclasses import is_dataclass

import lightning as L
from jsonargparse import set_docstring_parse_options
from lightning.pytorch.cli import LightningCLI

from unigen.checkpoints import check_checkpoint_file
from unigen.errors import config_error
from unigen.module import UnifiedLM
from unigen.pipeline.stage import command, settings_class
from unigen.registry import Registry
from unigen.scale.resume import LATEST, LIGHTNING_KEYWORDS, resolve_ckpt_path

LIGHTNING_COMMANDS = {
    "fit": "Train a model (reward-weighted post-training) from --config <fit.yaml>",
    "validate": "Run one evaluation epoch on the validation set",
    "test": "Run one evaluation epoch on the test set",
    "predict": "Run inference on the predict set",
}
"""Lightning's subcommands (``UnigenCLI``)."""

COMMANDS = Registry("command", {
    "evaluate": "unigen.pipeline.evaluate.evaluate",
    "target": "unigen.pipeline.target.target",
    "generate": "unigen.pipeline.generate.generate",
    "score": "unigen.pipeline.score.score",
    "reflect": "unigen.pipeline.reflect.reflect",
    "loop": "unigen.pipeline.loop.loop",
    "export": "unigen.pipeline.export.main",
    "synthesize": "unigen.data.synthesize.main",
    "shapes-vq": "unigen.worlds.shapes.build.vq_main",
    "shapes-data": "unigen.worlds.shapes.build.data_main",
})
"""Commands beside Lightning's: add a line here to add a command."""

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


def is_stage(func) -> bool:
    """A stage takes one settings dataclass (``unigen.pipeline.stage``)."""
    try:
        return inspect.isfunction(func) and is_dataclass(settings_class(func))
    except (ValueError, TypeError):
        return False


def summary_line(name: str) -> str:
    """The first line of a command's docstring."""
    func = COMMANDS.locate(name)
    return (func.__doc__ or "").strip().splitlines()[0].rstrip(".") if func.__doc__ else ""


def usage() -> str:
    """Every command, one line each."""
    rows = [*LIGHTNING_COMMANDS.items(), *((name, summary_line(name)) for name in COMMANDS.short_names)]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {text}" for name, text in rows]
    return ("usage: run.py <command> [--config a.yaml ...] [--key value ...]\n\ncommands:\n" + "\n".join(lines)
            + "\n\n`run.py <command> --help` lists a command's options.\n")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    name = argv[0]
    if name in COMMANDS.short_names:
        func = COMMANDS.locate(name)
        if is_stage(func):
            command(func)(argv[1:], f"run.py {name}")
        else:
            func(argv[1:])
        return
    if name not in LIGHTNING_COMMANDS:
        sys.exit(f"run.py: unknown command '{name}'\n\n{usage()}")
    lightning_cli(argv)
