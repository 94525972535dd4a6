"""Per-benchmark output layouts: each writes the files its benchmark's official scorer reads."""

from unigen.benchmarks.layouts.base import Layout, placeholder_png
from unigen.benchmarks.layouts.dpg_bench import DPGBenchLayout
from unigen.benchmarks.layouts.geneval import GenEvalLayout
from unigen.benchmarks.layouts.oneig import OneIGLayout
from unigen.benchmarks.layouts.t2i_compbench import T2ICompBenchLayout
from unigen.benchmarks.layouts.wise import WISELayout

LAYOUTS: dict[str, Layout] = {
    "geneval": GenEvalLayout(), "dpg_bench": DPGBenchLayout(), "t2i_compbench": T2ICompBenchLayout(),
    "wise": WISELayout(), "oneig": OneIGLayout(), "oneig_zh": OneIGLayout(),
}
"""Benchmark name -> layout; a benchmark without an entry is written in GenEval's layout."""


def layout_for(benchmark: str) -> Layout:
    return LAYOUTS.get(benchmark, LAYOUTS["geneval"])


__all__ = ["LAYOUTS", "Layout", "layout_for", "placeholder_png"]
