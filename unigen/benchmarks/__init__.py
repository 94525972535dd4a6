"""Benchmarks: prompts + a scorer + a summary, each benchmark's official output layout, and weakness targeting."""

from unigen.benchmarks.base import BENCHMARKS, Benchmark, load_benchmark, register_benchmark

__all__ = ["BENCHMARKS", "Benchmark", "load_benchmark", "register_benchmark"]
