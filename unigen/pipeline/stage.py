"""What every stage shares: its command line and its resume check.

A stage is a function ``stage(settings) -> Path`` over a settings dataclass whose attribute
docstrings are its ``--help``. ``command(stage)`` turns it into ``run.py <name>``: ``--config
a.yaml --config b.yaml`` (later wins), dotted overrides, ``--print_config`` and omegaconf
interpolation, like ``run.py fit``.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

from unigen.files import atomic_write_text
from unigen.registry import Spec, spec_value


def settings_class(stage: Callable[..., Any]) -> type:
    """The settings dataclass a stage takes (its one annotated parameter)."""
    hints = typing.get_type_hints(stage)
    hints.pop("return", None)
    (cls,) = hints.values()
    return cls


def parser(stage: Callable[..., Any], prog: str) -> ArgumentParser:
    """The stage's command-line parser (its settings' fields as options)."""
    cls = settings_class(stage)
    out = ArgumentParser(prog=prog, parser_mode="omegaconf", description=(stage.__doc__ or "").strip())
    out.add_argument("--config", action=ActionConfigFile, help="YAML config (may repeat; later wins)")
    out.add_class_arguments(cls, as_group=False)
    return out


def parse(stage: Callable[..., Any], argv: list[str], prog: str) -> Any:
    """The stage's settings from a command line."""
    p = parser(stage, prog)
    cfg = p.instantiate_classes(p.parse_args(argv))
    cfg.pop("config", None)
    return settings_class(stage)(**{k: v for k, v in vars(cfg).items() if k != "__path__"})


def command(stage: Callable[..., Any]) -> Callable[[list[str], str], Path]:
    """``run.py <name> ...``: parse the settings and run the stage."""

    def main(argv: list[str], prog: str) -> Path:
        return stage(parse(stage, argv, prog))

    main.__doc__ = stage.__doc__
    return main


def as_dict(settings: Any) -> dict[str, Any]:
    """A settings dataclass as plain JSON data."""
    return json.loads(json.dumps(dataclasses.asdict(settings), default=lambda o: spec_value(o)
                                 if isinstance(o, Spec) else str(o)))


def check_settings(path: Path, expected: dict[str, Any]) -> None:
    """Record the settings that determine a stage's output, or refuse a resume whose settings differ."""
    if path.exists():
        found = json.loads(path.read_text())
        changed = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
        if changed:
            raise ValueError(f"'{path.parent}' holds a run with different {changed} (see {path.name}); "
                             "use a new output folder or the same settings")
        return
    atomic_write_text(path, json.dumps(expected, indent=1, sort_keys=True))
