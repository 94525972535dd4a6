"""ShapesWorld as a plug-in: its benchmark and its prompt source, named in YAML like any other
(``benchmark: {class_path: shapes}``, ``prompts: shapes``; its rewards are ``shapes_strict`` (the
training reward and headline metric), ``shapes_geneval`` and ``shapes_plan``, its base model's VQ
is fitted by ``run.py shapes-vq``)."""

from __future__ import annotations

from unigen.data.prompts import PromptRecord
from unigen.evals.benchmark import Benchmark
from unigen.worlds.shapes.grammar import benchmark_prompts, category_pool, sample_prompts
from unigen.worlds.shapes.vocab import CATEGORIES


def shapes_benchmark(per_category: int | None = None, seed: int = 0) -> Benchmark:
    """The held-out benchmark: one prompt per held-out content, six per category, balanced over
    shapes (or a seeded subset of ``per_category``); GenEval's averaging (mean of per-category accuracies)."""
    return Benchmark("shapes", benchmark_prompts(per_category, seed=seed), averaging="categories")


class ShapesPrompts:
    """Training prompts from ShapesWorld's grammar (train split, disjoint from the benchmark's)."""

    categories = [c for c in CATEGORIES if category_pool(c, "train")]
    benchmark_only = [c for c in CATEGORIES if not category_pool(c, "train")]
    """``single_object``: with six shapes all six of its contents are held out."""

    def __init__(self, id_prefix: str = "loop"):
        """
        Args:
            id_prefix: prompt ids read ``<id_prefix>-<category>-<n>`` (they seed the generation).
        """
        self.id_prefix = id_prefix

    def natural_mix(self) -> dict[str, float]:
        """The world's own mix: the size of each category's train pool."""
        return {c: float(len(category_pool(c, "train"))) for c in self.categories}

    def draw(self, budgets: dict[str, int], weights: dict[str, float], strategy: str, seed: int,
             forbidden: set[str]) -> list[PromptRecord]:
        """Category ``i`` (sorted by name) draws its budget with seed ``seed * 100 + i``; the train
        split never holds a benchmark prompt (the target stage checks ``forbidden`` again)."""
        records: list[PromptRecord] = []
        for i, (category, n) in enumerate(sorted(budgets.items())):
            if n:
                records += sample_prompts(n, seed * 100 + i, {category: 1.0}, "train",
                                          id_prefix=f"{self.id_prefix}-{category}")
        return records
