"""Draw a benchmark's prompts with a model, score the samples and summarise them.

``draw_and_score`` is shared by ``run.py evaluate`` (this module's ``main``: GenEval-layout folders,
resumable) and the periodic evaluation callback (in memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
from tqdm import tqdm

from unigen.pipeline.stage import run_function
from unigen.evals.benchmark import Benchmark, load_benchmark
from unigen.evals.layout import SampleOutput, finished_indices, read_scores, write_prompt_folder
from unigen.rewards.color_match import Scorer, resolve_scorer
from unigen.evals.summary import image_grid, png_image, summarize, write_summary
from unigen.data.prompts import PromptRecord
from unigen.data.trajectory import MODES
from unigen.generation import SamplingConfig
from unigen.generation.rollouts import generate_trajectories
from unigen.models.unified import UnifiedModel


@torch.no_grad()
def draw_and_score(model: UnifiedModel, records: list[PromptRecord], samples_per_prompt: int,
                   config: SamplingConfig, scorer: Scorer | None, seed: int, model_id: str) -> list[list[SampleOutput]]:
    """``samples_per_prompt`` samples for each record (in record order), scored when a scorer is given."""
    trajs = generate_trajectories(model, records, samples_per_prompt, config, seed, model_id, decode_png=True)
    scores = scorer(trajs) if scorer is not None else [None] * len(trajs)
    if len(scores) != len(trajs):
        raise ValueError(f"scorer returned {len(scores)} scores for {len(trajs)} samples")
    by_prompt: dict[str, list[tuple[int, SampleOutput]]] = {r.id: [] for r in records}
    for traj, score in zip(trajs, scores):
        switched = bool(traj.generation.get("switched", traj.has_image))
        tokens = traj.generation.get("reasoning_tokens", len(model.spec.encode_text(traj.reasoning)))
        sample = SampleOutput(traj.png, traj.reasoning, None if score is None else float(score), switched, int(tokens))
        by_prompt[traj.prompt_id].append((traj.sample_idx, sample))
    return [[s for _, s in sorted(by_prompt[r.id], key=lambda x: x[0])] for r in records]


def sample_rows(records: list[PromptRecord], samples: list[list[SampleOutput]]) -> list[dict]:
    """Flatten per-prompt samples into the rows ``summarize`` reads."""
    return [{"category": r.category, "score": s.score, "switched": s.switched, "reasoning_tokens": s.reasoning_tokens}
            for r, group in zip(records, samples) for s in group]


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def summarize_folder(outdir: str | Path, bench: Benchmark, grid_prompts: int = 16) -> dict:
    """Summary, Markdown table and grid from every finished prompt folder under ``outdir``."""
    scores = read_scores(outdir)
    rows = [{**s, "category": entry["category"]} for entry in scores.values() for s in entry["samples"]]
    summary = summarize(rows, bench.averaging, bench.name)
    shown = sorted(scores)[:grid_prompts]
    images, captions = [], []
    for index in shown:
        png = Path(outdir) / f"{index:05d}" / "samples" / "0000.png"
        images.append(png_image(png.read_bytes() if png.is_file() else None))
        captions.append(bench.prompts[index].prompt)
    write_summary(outdir, summary, image_grid(images, captions) if images else None)
    return summary


def evaluate(model: str, benchmark: str, benchmark_path: str, outdir: str, mode: Literal["unified", "explicit", "direct"] = "unified",
             samples_per_prompt: int = 4, max_prompts: int | None = None, batch_prompts: int = 8,
             scorer: str | dict | None = "color_match", sampling: SamplingConfig = SamplingConfig(), seed: int = 0,
             device: str = "cpu", grid_prompts: int = 16) -> dict:
    """Draw every benchmark prompt, write GenEval-layout folders, scores and a summary (resumable).

    Args:
        model: a unigen ``.ckpt``, a preset name, an architecture YAML or a transformers folder.
        benchmark: registered benchmark name (``geneval``, ``dpg_bench``, ``t2i_compbench``, ``wise``, ``oneig``).
        benchmark_path: the benchmark's published prompt file or folder.
        outdir: output folder (``<index:05d>/`` per prompt, ``summary.json``, ``summary.md``, ``grid.png``).
        mode: ``unified`` | ``explicit`` | ``direct`` (overrides ``sampling.mode``).
        samples_per_prompt: images per prompt (GenEval uses 4).
        max_prompts: evaluate only this many prompts, spread over categories (None = all).
        batch_prompts: prompts drawn together in one sampler call.
        scorer: built-in scorer name, ``package.module:attribute`` (any reward), a
            ``{class_path, init_args}`` mapping, or ``none``.
        sampling: sampler settings (reasoning length, temperatures, CFG, ...).
        seed: run seed; sample k of a prompt gets a seed derived from (seed, prompt id, k), so results do
            not depend on batching or on resuming.
        device: torch device for the model.
        grid_prompts: prompts shown (first sample each) in ``grid.png``.
    """
    if mode not in MODES:
        raise ValueError(f"mode '{mode}' not in {MODES}")
    bench = load_benchmark(benchmark, benchmark_path).subset(max_prompts)
    config = replace(sampling, mode=mode)
    done = finished_indices(outdir)
    todo = [i for i in range(len(bench.prompts)) if i not in done]
    score_fn = resolve_scorer(scorer)
    if todo:
        from unigen.checkpoints import load_unified

        net = load_unified(model, device)
        with tqdm(total=len(bench.prompts), initial=len(bench.prompts) - len(todo), desc=f"evaluate {bench.name}",
                  unit="prompt") as bar:
            for batch in _batches(todo, batch_prompts):
                records = [bench.prompts[i] for i in batch]
                groups = draw_and_score(net, records, samples_per_prompt, config, score_fn, seed, model)
                for index, record, group in zip(batch, records, groups):
                    write_prompt_folder(outdir, index, bench.source_lines[index], record.category, group)
                bar.update(len(batch))
    summary = summarize_folder(outdir, bench, grid_prompts)
    print(f"{bench.name}: overall {summary['overall']} over {summary['scored']} scored samples -> {outdir}")
    return summary


def main(argv: list[str]) -> None:
    """``run.py evaluate --model ckpt --benchmark geneval --benchmark_path file --outdir dir ...``"""
    run_function(evaluate, argv, "run.py evaluate")
