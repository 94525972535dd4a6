"""Draw a benchmark's prompts with a model, score the samples and summarise them.

``draw_and_score`` is shared by the evaluate stage (``unigen.pipeline.evaluate``: GenEval-layout
folders, resumable) and the periodic evaluation callback (in memory).
"""

from __future__ import annotations

from pathlib import Path

import torch

from unigen.evals.benchmark import Benchmark
from unigen.evals.layout import SampleOutput, read_scores
from unigen.rewards.contract import Reward
from unigen.evals.summary import image_grid, png_image, summarize, write_summary
from unigen.data.prompts import PromptRecord
from unigen.generation import SamplingConfig
from unigen.generation.rollouts import generate_trajectories
from unigen.models.unified import UnifiedModel


@torch.no_grad()
def draw_and_score(model: UnifiedModel, records: list[PromptRecord], samples_per_prompt: int,
                   config: SamplingConfig, reward: Reward | None, seed: int, model_id: str) -> list[list[SampleOutput]]:
    """``samples_per_prompt`` samples for each record (in record order), scored when a reward is given."""
    trajs = generate_trajectories(model, records, samples_per_prompt, config, seed, model_id, decode_png=True)
    scores = reward(trajs) if reward is not None else [None] * len(trajs)
    if len(scores) != len(trajs):
        raise ValueError(f"reward returned {len(scores)} scores for {len(trajs)} samples")
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
