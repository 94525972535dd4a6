"""Which benchmark prompts a process draws: ``--prompts start:stop``, then ``--max_prompts N``
(spread over categories), then ``--shard i/n``.

All select by benchmark index (the prompt's position in its benchmark, see
``unigen/evals/benchmarks/``), so a prompt's folder name never depends on the slice, and shards
``0/n`` ... ``n-1/n`` of the same slice are disjoint and together cover it (shard i takes every
n-th prompt from the i-th on, which spreads each shard over the benchmark's categories).
"""

from __future__ import annotations

from unigen.evals.benchmark import Benchmark


def parse_range(spec: str, total: int) -> range:
    """``"a:b"`` (either end may be empty) or ``"a"`` (one prompt) -> indices within ``range(total)``."""
    start, sep, stop = spec.partition(":")
    try:
        first = int(start) if start.strip() else 0
        last = (int(stop) if stop.strip() else total) if sep else first + 1
    except ValueError:
        raise ValueError(f"--prompts '{spec}': expected start:stop with integers, e.g. 0:100") from None
    if not 0 <= first <= last <= total:
        raise ValueError(f"--prompts '{spec}': needs 0 <= start <= stop <= {total} (the benchmark's size)")
    return range(first, last)


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    index, _, count = spec.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise ValueError(f"--shard '{spec}': expected i/n, e.g. 0/4") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard '{spec}': needs 0 <= i < n")
    return i, n


def select(bench: Benchmark, prompts: str | None = None, max_prompts: int | None = None,
           shard: str | None = None) -> list[int]:
    """Benchmark indices of ``--prompts`` (default all), of ``max_prompts`` of them spread over
    categories (``Benchmark.spread``), then of shard ``i/n`` of those."""
    total = len(bench.prompts)
    indices = bench.spread(max_prompts, list(parse_range(prompts, total) if prompts else range(total)))
    if shard:
        i, n = parse_shard(shard)
        indices = indices[i::n]
    return indices
