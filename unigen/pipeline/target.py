"""The target stage: a training prompt set aimed at the model's weak categories (or an ablation set)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from unigen.data.prompts import write_prompts
from unigen.evals.benchmark import load_benchmark
from unigen.evals.targeting import PROMPT_SOURCES, check_no_overlap, normalise, plan_budgets
from unigen.files import atomic_write_text
from unigen.pipeline.stage import as_dict, check_settings
from unigen.registry import Spec, spec_value


@dataclass
class TargetSettings:
    """Which prompt set to synthesize (rules in ``unigen.evals.targeting``)."""

    out: str = "prompts.jsonl"
    """Output prompt file (``.jsonl``); ``<out>.plan.json`` records the budgets and settings."""
    strategy: Literal["targeted", "broad", "benchmark_aligned"] = "targeted"
    """``targeted`` (failure rates), ``broad`` (the source's natural mix), ``benchmark_aligned`` (the benchmark's mix)."""
    summaries: list[str] = field(default_factory=list)
    """``summary.json`` files of the evaluate stage (needed by ``targeted``)."""
    budget: int = 3500
    """Total number of prompts."""
    floor: float = 0.05
    """Minimum share of the budget every category gets (``targeted``)."""
    prompts: Spec = "templates"
    """The prompt source: ``templates`` (GenEval-style, ``init_args: {vocabulary: <file>}``), ``shapes``, or your own."""
    benchmark: Spec | None = None
    """The benchmark whose prompts are never copied (and whose mix ``benchmark_aligned`` follows);
    None: no overlap check is possible."""
    seed: int = 0
    """Random seed of the draws."""


def plan_path(out: str | Path) -> Path:
    """The plan of the prompt file ``out`` (``<out>.plan.json``: budgets per category, weights, settings)."""
    return Path(f"{out}.plan.json")


def target(settings: TargetSettings) -> Path:
    """Synthesize a prompt set aimed at weak categories (or an ablation set).

    Writes the prompts (JSONL) and ``<out>.plan.json``; a finished set with the same settings is
    reused. Returns the prompt file."""
    s = settings
    out, plan = Path(s.out), plan_path(s.out)
    if out.is_file() and plan.is_file():
        check_settings(plan.with_suffix(".settings.json"), as_dict(s))
        return out
    bench = load_benchmark(s.benchmark) if s.benchmark is not None else None
    if bench is None and s.strategy == "benchmark_aligned":
        raise ValueError("strategy 'benchmark_aligned' needs a benchmark (to follow its mix and refuse its prompts)")
    bench_prompts = [r.prompt for r in bench.prompts] if bench else []
    source = PROMPT_SOURCES.build(s.prompts)
    budgets, weights = plan_budgets(s.strategy, s.budget, s.floor, s.summaries, source,
                                    [r.category for r in bench.prompts] if bench else None)
    records = source.draw(budgets, {c: float(w) for c, w in weights.items()}, s.strategy, s.seed,
                          {normalise(p) for p in bench_prompts})
    check_no_overlap(records, bench_prompts, f"the benchmark {bench.name}" if bench else "benchmark")
    made = dict(Counter(r.category for r in records))
    redrawn = getattr(source, "redrawn", 0)
    write_prompts(out, records)
    atomic_write_text(plan.with_suffix(".settings.json"), json.dumps(as_dict(s), indent=1, sort_keys=True))
    atomic_write_text(plan, json.dumps({
        "strategy": s.strategy, "budget": s.budget, "floor": s.floor, "weights": weights, "budgets": made,
        "redrawn": redrawn, "seed": s.seed, "summaries": s.summaries, "benchmark": spec_value(s.benchmark)}, indent=2))
    for category, n in made.items():
        print(f"{category:>16}: weight {weights[category]:.3f} -> {n} prompts")
    print(f"wrote {len(records)} prompts to {out} ({redrawn} candidates redrawn)")
    return out
