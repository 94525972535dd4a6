"""Paths of the benchmark fixtures and of the real GenEval file (when the checkout has it)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets" / "benchmarks"


def real_geneval() -> Path:
    """The real ``evaluation_metadata.jsonl``: ``<repo>/../shared`` then ``/work/shared``; else skip."""
    for root in (REPO.parent / "shared", Path("/work/shared")):
        path = root / "benchmarks" / "geneval" / "evaluation_metadata.jsonl"
        if path.is_file():
            return path
    pytest.skip("the real GenEval prompt file is not available in this checkout")


def load(name: str, path: Path | str):
    """The registered benchmark ``name`` read from ``path`` (the spec form YAML and the CLI use)."""
    from unigen.evals import load_benchmark

    return load_benchmark({"class_path": name, "init_args": {"path": str(path)}})
