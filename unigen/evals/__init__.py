"""Benchmarks (prompts, averaging rule and official output layout; the shipped ones in
``benchmarks/``, one module each), drawing and scoring them, summaries, and weakness targeting."""

from unigen.evals.benchmark import BENCHMARKS, Benchmark, Layout, load_benchmark

__all__ = ["BENCHMARKS", "Benchmark", "Layout", "load_benchmark"]
