"""Benchmarks (prompts + averaging rule), drawing and scoring them, summaries, GenEval's output
layout, and weakness targeting."""

from unigen.evals.benchmark import BENCHMARKS, Benchmark, load_benchmark

__all__ = ["BENCHMARKS", "Benchmark", "load_benchmark"]
