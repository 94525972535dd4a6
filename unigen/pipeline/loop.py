"""The loop: the whole method as a composition of the stages, for any model, benchmark, prompt
source, rewards and fit configs named in YAML.

Per seed, under ``<out>/seed-<s>/``: evaluate the base in each of ``base_modes`` (``eval/base_<mode>``,
and ``eval/base_<mode>_<name>`` for each of ``also_evaluate``) -> target the weak categories of
the first (``prompts.jsonl``) -> generate K trajectories
per prompt with the base (``generated/``, seed ``s + 1`` so they differ from the evaluation's
samples) -> score them (``scored/``) -> fit (``fit/``, the model in ``fit/model``) -> evaluate the
fitted model in each of ``post_modes`` (``eval/post_<mode>``) -> report. Every stage reuses its
finished output and refuses changed settings, so a killed loop resumes where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from unigen.files import atomic_write_text
from unigen.registry import spec_value
from unigen.pipeline.evaluate import EvaluateSettings, evaluate
from unigen.pipeline.fit import FitSettings, fit
from unigen.pipeline.generate import GenerateSettings, generate
from unigen.pipeline.report import write_report, write_seed_table
from unigen.pipeline.score import ScoreSettings, score
from unigen.pipeline.target import TargetSettings, target

Mode = Literal["unified", "explicit", "direct"]


@dataclass
class LoopSettings:
    """The stages' settings; the loop fills in each stage's inputs, outputs, model and seed."""

    model: str
    """The base model: a transformers folder, a preset, an architecture YAML or a ``.ckpt``."""
    evaluate: EvaluateSettings
    """The targeted benchmark: benchmark, reward, samples and sampling of its evaluations (the loop sets
    model, outdir, mode, seed)."""
    score: ScoreSettings
    """Rewards of the self-generated trajectories (the loop sets input and output)."""
    fit: FitSettings
    """The reward-weighted fit: ``run.py fit`` configs (the loop sets out, model, train_shards, seed)."""
    target: TargetSettings = field(default_factory=TargetSettings)
    """Strategy, budget and prompt source (the loop sets out, summaries, benchmark, seed)."""
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    """K, batching and sampling (mode included) of self-generation (the loop sets prompts, out_dir, model, seed)."""
    also_evaluate: list[dict[str, Any]] = field(default_factory=list)
    """Further benchmarks evaluated beside it in the same modes (reported, not targeted): each the
    ``evaluate`` settings that differ from the targeted one's (``benchmark``, ``reward``, ...)."""
    out: str = "outputs/loop"
    """Output folder: ``seed-<s>/`` per seed, ``report.md`` and ``results.json`` over all seeds."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """One full pass per seed; several seeds give mean and spread."""
    base_modes: list[Mode] = field(default_factory=lambda: ["explicit", "unified"])
    """Modes the base model is evaluated in; targeting reads the first."""
    post_modes: list[Mode] = field(default_factory=lambda: ["unified"])
    """Modes the fitted model is evaluated in."""


def run_seed(s: LoopSettings, seed: int) -> dict:
    """One full pass of the method (every stage resumable); returns the seed's results."""
    run_dir = Path(s.out) / f"seed-{seed}"
    results_path = run_dir / "results.json"
    if results_path.exists():
        return json.loads(results_path.read_text())
    evaluations: dict[str, Path] = {}

    def evaluations_of(model: str, phase: str, modes: list[str]) -> None:
        for mode in modes:
            for suffix, settings in (("", s.evaluate), *((f"_{_name(e['benchmark'])}", _merged(s.evaluate, e))
                                                         for e in s.also_evaluate)):
                key = f"{phase}_{mode}{suffix}"
                evaluations[key] = evaluate(replace(settings, model=model, outdir=str(run_dir / "eval" / key),
                                                    mode=mode, seed=seed))

    evaluations_of(s.model, "base", s.base_modes)
    prompts = target(replace(s.target, out=str(run_dir / "prompts.jsonl"), seed=seed, benchmark=s.evaluate.benchmark,
                             summaries=[str(next(iter(evaluations.values())))]))
    shards = generate(replace(s.generate, prompts=[str(prompts)], out_dir=str(run_dir / "generated"), model=s.model,
                              seed=seed + 1))
    scored = score(replace(s.score, input=str(shards), output=str(run_dir / "scored")))
    model = fit(replace(s.fit, out=str(run_dir / "fit"), model=s.model, seed=seed,
                        train_shards=[str(scored.parent / f"{s.score.prefix}-*.tar")]))
    evaluations_of(str(model), "post", s.post_modes)
    stats = json.loads(scored.read_text())
    results = {
        "seed": seed, "strategy": s.target.strategy, "fit_config": s.fit.config,
        "budget": json.loads(Path(f"{prompts}.plan.json").read_text())["budgets"],
        "self_generated": {"trajectories": _count(stats), "rewards": stats},
        "evaluations": list(evaluations),
        **{key: json.loads(path.read_text()) for key, path in evaluations.items()},
    }
    write_report(run_dir, results, evaluations[f"base_{s.base_modes[0]}"].parent,
                 evaluations[f"post_{s.post_modes[-1]}"].parent)
    atomic_write_text(results_path, json.dumps(results, indent=1))
    return results


def _merged(settings: EvaluateSettings, changes: dict[str, Any]) -> EvaluateSettings:
    """``settings`` with ``changes`` (``sampling`` merged key by key)."""
    changes = dict(changes)
    if "sampling" in changes:
        changes["sampling"] = replace(settings.sampling, **changes["sampling"])
    return replace(settings, **changes)


def _name(spec) -> str:
    """A benchmark's short name from its spec (``dpg_bench``, or the last part of an import path)."""
    spec = spec_value(spec)
    return (spec["class_path"] if isinstance(spec, dict) else spec).rpartition(".")[2]


def _count(stats: dict[str, dict]) -> int:
    """Trajectories scored (any reward's count + missing)."""
    first = next(iter(stats.values()), {"count": 0, "missing": 0})
    return first["count"] + first["missing"]


def loop(settings: LoopSettings) -> Path:
    """The whole method: evaluate -> target -> generate -> score -> fit -> evaluate, per seed.

    Returns ``<out>/results.json``; the table over seeds is printed and in ``<out>/report.md``."""
    runs = [run_seed(settings, seed) for seed in settings.seeds]
    write_seed_table(Path(settings.out), runs)
    return Path(settings.out) / "results.json"
