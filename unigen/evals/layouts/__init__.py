"""Per-benchmark output layouts: each writes the files its benchmark's official scorer reads."""

from unigen.evals.layouts.base import Layout, placeholder_png
from unigen.evals.layouts.dpg_bench import DPGBenchLayout
from unigen.evals.layouts.geneval import GenEvalLayout
from unigen.evals.layouts.oneig import OneIGLayout
from unigen.evals.layouts.t2i_compbench import T2ICompBenchLayout
from unigen.evals.layouts.wise import WISELayout

LAYOUTS: dict[str, Layout] = {
    "geneval": GenEvalLayout(), "dpg_bench": DPGBenchLayout(), "t2i_compbench": T2ICompBenchLayout(),
    "wise": WISELayout(), "oneig": OneIGLayout(), "oneig_zh": OneIGLayout(),
}
"""Benchmark name -> layout; a benchmark without an entry is written in GenEval's layout."""


def layout_for(benchmark: str) -> Layout:
    return LAYOUTS.get(benchmark, LAYOUTS["geneval"])


__all__ = ["LAYOUTS", "Layout", "layout_for", "placeholder_png"]
