"""What a benchmark is: prompts with categories and metadata, a scorer, and an averaging rule.

A benchmark is loaded from its own published file (see ``loaders.py``) through a registry, so a
new one (ShapesWorld's held-out set, say) is one ``register_benchmark`` call. The scorer is any
reward from the reward contract: a callable ``scorer(trajectories) -> list[float | None]`` (None =
not applicable). The averaging rule says how per-sample scores become the headline number.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unigen.data.prompts import PromptRecord

AVERAGING = ("categories", "samples")
"""``categories``: overall = mean of per-category means (GenEval). ``samples``: mean over all
scored samples (DPG-Bench, T2I-CompBench within one category file, ...)."""


@dataclass
class Benchmark:
    """Prompts in benchmark order, each with the exact source line written to ``metadata.jsonl``."""

    name: str
    prompts: list[PromptRecord]
    source_lines: list[str] = field(default_factory=list)
    """One per prompt: the benchmark file's own line (GenEval) or a JSON line made from the record."""
    averaging: str = "categories"

    def __post_init__(self) -> None:
        if self.averaging not in AVERAGING:
            raise ValueError(f"benchmark '{self.name}': averaging '{self.averaging}' not in {AVERAGING}")
        if not self.source_lines:
            self.source_lines = [json.dumps(asdict(r), sort_keys=True) for r in self.prompts]
        if len(self.source_lines) != len(self.prompts):
            raise ValueError(f"benchmark '{self.name}': {len(self.source_lines)} source lines for "
                             f"{len(self.prompts)} prompts")

    @property
    def categories(self) -> list[str]:
        """Categories in order of first appearance."""
        return list(dict.fromkeys(r.category for r in self.prompts))

    def spread(self, max_prompts: int | None, among: list[int] | None = None) -> list[int]:
        """Indices of the first ``max_prompts`` prompts (of ``among``, default all), taken from the
        categories in turn so that each is covered; in benchmark order."""
        among = list(range(len(self.prompts))) if among is None else among
        if max_prompts is None or max_prompts >= len(among):
            return among
        by_cat: dict[str, list[int]] = {}
        for i in among:
            by_cat.setdefault(self.prompts[i].category, []).append(i)
        picked: list[int] = []
        while len(picked) < max_prompts:
            for idx in by_cat.values():
                if idx and len(picked) < max_prompts:
                    picked.append(idx.pop(0))
        return sorted(picked)

    def subset(self, max_prompts: int | None) -> Benchmark:
        """A benchmark of the ``spread`` prompts (for in-memory evaluation; files use benchmark indices)."""
        picked = self.spread(max_prompts)
        return Benchmark(self.name, [self.prompts[i] for i in picked], [self.source_lines[i] for i in picked],
                         self.averaging)


Loader = Callable[[str | Path], Benchmark]
BENCHMARKS: dict[str, Loader] = {}
"""Benchmark name -> loader reading the benchmark's published file(s) from a user-given path."""


def register_benchmark(name: str) -> Callable[[Loader], Loader]:
    """Decorator: make a loader available as ``load_benchmark(name, path)``."""

    def add(loader: Loader) -> Loader:
        BENCHMARKS[name] = loader
        return loader

    return add


def load_benchmark(name: str, path: str | Path) -> Benchmark:
    """Load a registered benchmark from its file or folder."""
    from unigen.benchmarks import loaders  # noqa: F401  (registers the built-in loaders)

    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark '{name}'; known: {sorted(BENCHMARKS)}")
    if not Path(path).exists():
        raise FileNotFoundError(f"benchmark '{name}': path '{path}' does not exist")
    return BENCHMARKS[name](path)
