"""A unigen prompt file as a benchmark (``prompts``), e.g. a validation set.

Loader: one ``{"id", "prompt", "category", "metadata"}`` per line (``unigen.data.prompts``, e.g. what
``run.py target`` writes); file order. It names no layout: its runs are written in GenEval's.
"""

from __future__ import annotations

from pathlib import Path

from unigen.data.prompts import read_prompts
from unigen.evals.benchmark import Benchmark


def load_prompt_file(path: str | Path) -> Benchmark:
    """A unigen prompt file as a benchmark (named after the file), e.g. a validation set."""
    return Benchmark(Path(path).stem, read_prompts(path))
