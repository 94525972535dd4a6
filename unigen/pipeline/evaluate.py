"""The evaluate stage: draw every benchmark prompt, write GenEval-layout folders, scores and a summary."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from unigen.evals.benchmark import load_benchmark
from unigen.evals.layout import finished_indices, write_prompt_folder
from unigen.evals.runner import draw_and_score, summarize_folder
from unigen.generation import SamplingConfig
from unigen.pipeline.stage import as_dict, check_settings
from unigen.registry import Spec
from unigen.rewards import REWARDS


@dataclass
class EvaluateSettings:
    """What to evaluate, on which benchmark, scored by which reward."""

    benchmark: Spec
    """The benchmark: ``{class_path: geneval, init_args: {path: <evaluation_metadata.jsonl>}}``; short
    names ``geneval``, ``dpg_bench``, ``t2i_compbench``, ``wise``, ``oneig``, ``shapes``, or your own loader."""
    model: str = "janus-tiny"
    """A unigen ``.ckpt``, a preset name, an architecture YAML or a transformers folder."""
    outdir: str = "evals/run"
    """Output folder: ``<index:05d>/`` per prompt, ``summary.json``, ``summary.md``, ``grid.png``."""
    mode: Literal["unified", "explicit", "direct"] = "unified"
    """Generation mode (overrides ``sampling.mode``)."""
    reward: Spec | None = "color_match"
    """The reward scoring each sample (short name, import path or ``{class_path, init_args}``);
    ``null``: none (then run the benchmark's official scorer on the folders)."""
    samples_per_prompt: int = 4
    """Images per prompt (GenEval uses 4)."""
    max_prompts: int | None = None
    """Evaluate only this many prompts, spread over categories (None = all)."""
    batch_prompts: int = 8
    """Prompts drawn together in one sampler call."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Sampler settings (reasoning length, temperatures, CFG, ...)."""
    seed: int = 0
    """Run seed; sample k of a prompt gets a seed derived from (seed, prompt id, k), so results do not
    depend on batching or on resuming."""
    device: str = "cpu"
    """Torch device of the model."""
    grid_prompts: int = 16
    """Prompts shown (first sample each) in ``grid.png``."""


def evaluate(settings: EvaluateSettings) -> Path:
    """Draw and score a benchmark: GenEval-layout folders, scores, a summary.

    Resumable (finished prompt folders are kept); returns the path of ``summary.json``."""
    s = settings
    bench = load_benchmark(s.benchmark).subset(s.max_prompts)
    outdir = Path(s.outdir)
    recorded = {k: v for k, v in as_dict(s).items() if k not in ("outdir", "batch_prompts", "device", "grid_prompts")}
    outdir.mkdir(parents=True, exist_ok=True)
    check_settings(outdir / "evaluate-settings.json", recorded)
    config = replace(s.sampling, mode=s.mode)
    done = finished_indices(outdir)
    todo = [i for i in range(len(bench.prompts)) if i not in done]
    reward = REWARDS.build(s.reward) if s.reward is not None else None
    if todo:
        from unigen.checkpoints import load_unified

        net = load_unified(s.model, s.device)
        with tqdm(total=len(bench.prompts), initial=len(bench.prompts) - len(todo), desc=f"evaluate {bench.name}",
                  unit="prompt") as bar:
            for start in range(0, len(todo), s.batch_prompts):
                batch = todo[start:start + s.batch_prompts]
                records = [bench.prompts[i] for i in batch]
                groups = draw_and_score(net, records, s.samples_per_prompt, config, reward, s.seed, s.model)
                for index, record, group in zip(batch, records, groups):
                    write_prompt_folder(outdir, index, bench.source_lines[index], record.category, group)
                bar.update(len(batch))
    summary = summarize_folder(outdir, bench, s.grid_prompts)
    print(f"{bench.name}: overall {summary['overall']} over {summary['scored']} scored samples -> {outdir}")
    return outdir / "summary.json"
