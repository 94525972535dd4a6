"""The ``run.py`` command line: one table of commands.

``fit`` / ``validate`` / ``test`` / ``predict`` are Lightning's own ``LightningCLI`` in omegaconf
mode with subclass mode for model and data (``unigen.lightning_cli``). Every other command is a line of ``COMMANDS``: a
pipeline stage (a function over a settings dataclass, see ``unigen.pipeline.stage``) or a
function taking the remaining command line. All share the YAML/override syntax; attribute
docstrings are the ``--help`` of each option.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import is_dataclass

from unigen.lightning_cli import LIGHTNING_COMMANDS, lightning_cli
from unigen.pipeline.stage import command, settings_class
from unigen.registry import Registry

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
    "shapes-judge": "unigen.worlds.shapes.learned_judge.judge_main",
})
"""Commands beside Lightning's: add a line here to add a command."""

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
