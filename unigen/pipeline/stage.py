"""Pipeline commands: a typed function becomes a ``run.py <name>`` command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser


def run_function(func: Callable[..., Any], argv: list[str], prog: str) -> Any:
    """Parse ``argv`` into ``func``'s typed arguments and call it.

    Accepts ``--config a.yaml --config b.yaml`` (later wins), dotted overrides, ``--print_config``
    and omegaconf interpolation, like ``run.py fit``; argument help comes from the docstring.
    """
    parser = ArgumentParser(prog=prog, parser_mode="omegaconf", description=(func.__doc__ or "").splitlines()[0])
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_function_arguments(func)
    cfg = parser.parse_args(argv)
    cfg.pop("config", None)
    return func(**parser.instantiate_classes(cfg).as_dict())
