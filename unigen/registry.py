"""One way to name an extension of any kind (model adapter, reward, benchmark, weighting scheme,
prompt source): a short name or an importable path, with optional arguments.

A spec is
- a short name from the kind's table (``color_match``, ``geneval``, ``rwr``), or
- an importable path ``package.module.Name`` (your own code, anywhere on ``PYTHONPATH``), or
- a mapping ``{class_path: <short name or path>, init_args: {...}}`` (the spelling Lightning
  uses for ``model`` / ``data`` / callbacks).

A named class or function is called with ``init_args`` (none: no arguments); any other named
object (an instance built in that module) is returned as it is. Short names are strings, so
a table never imports the code it names and nothing imports in a cycle.
"""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

import yaml
from jsonargparse.typing import register_type


class Spec:
    """How YAML and the command line name an extension (see the module docstring).

    Config parsers keep it opaque: a spec replaces an earlier one whole (a stacked YAML or a
    command-line value), whatever it names; it is built only when a stage runs.
    """

    def __init__(self, value: str | dict[str, Any] | Spec):
        self.value = value.value if isinstance(value, Spec) else value

    def __repr__(self) -> str:
        return f"Spec({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Spec) and other.value == self.value


def _parse_spec(value: Any) -> Spec:
    """A spec from YAML data or from a command-line string (``name`` or ``{class_path: ..., ...}``)."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        value = yaml.safe_load(value)
    if not isinstance(value, (str, dict, Spec)):
        raise ValueError(f"expected a short name, an import path or {{class_path, init_args}}, got {value!r}")
    return Spec(value)


register_type(Spec, serializer=lambda s: s.value if isinstance(s.value, str) else json.dumps(s.value),
              deserializer=_parse_spec)


def spec_value(spec: Any) -> Any:
    """The plain value of a spec (a name or a mapping); anything else unchanged."""
    return spec.value if isinstance(spec, Spec) else spec


class Registry:
    """The short names of one extension kind, and the resolver of its specs."""

    def __init__(self, kind: str, short_names: dict[str, str]):
        """
        Args:
            kind: what is resolved (``reward``, ``benchmark``, ...), used in error messages.
            short_names: short name -> importable path ``package.module.Name``.
        """
        self.kind = kind
        self.short_names = dict(short_names)

    def locate(self, name: str) -> Any:
        """The object a short name or an importable path names (imported on first use)."""
        path = self.short_names.get(name, name)
        module, _, attr = path.rpartition(".")
        if not module:
            raise ValueError(f"unknown {self.kind} '{name}'; short names: {sorted(self.short_names)}, "
                             "or an importable path package.module.Name")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"{self.kind} '{name}': cannot import '{path}' ({err})") from None

    def build(self, spec: Spec | Any) -> Any:
        """The extension a spec names, built; an object that is not a spec (already built) is returned."""
        spec = spec_value(spec)
        if isinstance(spec, dict):
            unknown = set(spec) - {"class_path", "init_args"}
            if "class_path" not in spec or unknown:
                raise ValueError(f"a {self.kind} mapping has 'class_path' and optional 'init_args'; got keys "
                                 f"{sorted(spec)}")
            target, args = self.locate(spec["class_path"]), spec.get("init_args") or {}
        elif isinstance(spec, str):
            target, args = self.locate(spec), {}
        else:
            return spec
        if not (isinstance(target, type) or inspect.isfunction(target)):
            if args:
                raise ValueError(f"{self.kind} '{spec}' names an object, not a class or function: it takes no init_args")
            return target
        return target(**args)
