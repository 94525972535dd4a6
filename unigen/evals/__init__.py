"""Benchmarks: prompts + a scorer + a summary, GenEval's output layout, and weakness targeting."""

from unigen.evals.benchmark import BENCHMARKS, Benchmark, load_benchmark, register_benchmark

__all__ = ["BENCHMARKS", "Benchmark", "load_benchmark", "register_benchmark"]
