"""What a benchmark is: prompts with categories and metadata, an averaging rule, and the layout its
official scorer reads.

A benchmark is built by a loader named by a spec (``unigen.registry``): a short name of
``BENCHMARKS`` or the import path of your own loader, with its arguments, e.g.
``{class_path: geneval, init_args: {path: evaluation_metadata.jsonl}}``. A loader is any function
(or class) returning a :class:`Benchmark`; each shipped one lives with its :class:`Layout` in
``unigen/evals/benchmarks/<name>.py``. Samples are scored by a reward (``unigen.rewards``); the
averaging rule says how per-sample scores become the headline number.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unigen.data.prompts import PromptRecord
from unigen.registry import Registry, Spec, spec_value

AVERAGING = ("categories", "samples")
"""``categories``: overall = mean of per-category means (GenEval). ``samples``: mean over all
scored samples (DPG-Bench, T2I-CompBench within one category file, ...)."""


class Layout(ABC):
    """A benchmark's official output layout: the files its official scorer reads.

    It turns one prompt's K samples into those files (``render``: relative path -> bytes), refuses
    up front what that scorer could not read back (``check``), and names the command a user runs
    next (``scoring``). Shared pieces (the failure placeholder, grids): ``unigen.evals.benchmarks.images``.
    """

    def check(self, bench: Benchmark, indices: list[int], samples_per_prompt: int) -> None:
        """Raise ValueError naming the prompt when one of ``indices`` cannot be laid out (before drawing)."""

    @abstractmethod
    def render(self, bench: Benchmark, index: int, pngs: list[bytes | None], image_size: int) -> dict[str, bytes]:
        """Files for prompt ``index`` (relative to the output folder) from its K samples in order."""

    @abstractmethod
    def scoring(self, outdir: str, bench: Benchmark, samples_per_prompt: int, image_size: int) -> str:
        """The official scorer's command(s) for this folder (Markdown)."""


@dataclass
class Benchmark:
    """Prompts in benchmark order, each with the exact source line written to ``metadata.jsonl``."""

    name: str
    prompts: list[PromptRecord]
    source_lines: list[str] = field(default_factory=list)
    """One per prompt: the benchmark file's own line (GenEval) or a JSON line made from the record."""
    averaging: str = "categories"
    layout: Layout | None = None
    """How its runs are written (``Layout``); None: GenEval's layout
    (``unigen.evals.benchmarks.geneval``), the layout of a benchmark without an official scorer of
    its own (a prompt file, ShapesWorld's, your loader unless it names one)."""

    def __post_init__(self) -> None:
        if self.averaging not in AVERAGING:
            raise ValueError(f"benchmark '{self.name}': averaging '{self.averaging}' not in {AVERAGING}")
        if self.layout is not None and not isinstance(self.layout, Layout):
            raise TypeError(f"benchmark '{self.name}': layout must be a unigen Layout or None (GenEval's), "
                            f"got {self.layout!r}")
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
                         self.averaging, self.layout)


BENCHMARKS = Registry("benchmark", {
    "geneval": "unigen.evals.benchmarks.geneval.load_geneval",
    "dpg_bench": "unigen.evals.benchmarks.dpg_bench.load_dpg_bench",
    "t2i_compbench": "unigen.evals.benchmarks.t2i_compbench.load_t2i_compbench",
    "wise": "unigen.evals.benchmarks.wise.load_wise",
    "oneig": "unigen.evals.benchmarks.oneig.load_oneig",
    "oneig_zh": "unigen.evals.benchmarks.oneig.load_oneig_zh",
    "shapes": "unigen.worlds.shapes.world.shapes_benchmark",
    "prompts": "unigen.evals.benchmarks.prompts.load_prompt_file",
})
"""Short name -> loader (the published-file ones take ``path``: the file or folder you give); a
loader's module holds its benchmark's layout too."""


def load_benchmark(spec: Spec) -> Benchmark:
    """The benchmark a spec names; a ``path`` init arg must exist."""
    spec = spec_value(spec)
    path = (spec.get("init_args") or {}).get("path") if isinstance(spec, dict) else None
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(f"benchmark '{spec['class_path']}': path '{path}' does not exist")
    bench = BENCHMARKS.build(spec)
    if not isinstance(bench, Benchmark):
        raise TypeError(f"benchmark {spec!r} built a {type(bench).__name__}, not a unigen Benchmark")
    return bench
