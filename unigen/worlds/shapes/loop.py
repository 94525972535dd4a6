"""``run.py loop``: the whole method on ShapesWorld, end to end on a CPU.

evaluate the base on the held-out benchmark -> find weak categories -> build a prompt set
(``targeted`` / ``broad`` / ``benchmark_aligned``) -> self-generate K trajectories per prompt with
the base (``explicit`` mode: today's practice, the program appends begin-of-image) -> score them
(exact image judge, plan check) -> reward-weighted fit in ``unified`` mode (the model learns to
emit begin-of-image itself) -> evaluate again in ``unified`` mode -> report.

Every stage writes its output atomically under ``<out>/seed-<s>/`` and is skipped when that output
exists, so a killed loop resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import lightning as L
from tqdm import tqdm

from callbacks.reward_weighting import RewardWeighting
from datamodules.trajectories import TrajectoryDataModule
from unigen.pipeline.stage import run_function
from unigen.evals.summary import summarize
from unigen.evals.targeting import allocate, check_no_overlap
from unigen.data.prompts import PromptRecord, write_prompts
from unigen.data.shards import write_shard
from unigen.data.trajectory import Trajectory
from unigen.files import atomic_write_text
from unigen.generation import SamplingConfig
from unigen.generation.rollouts import generate_trajectories
from unigen.models.unified import UnifiedModel
from unigen.models.loading import load_model
from unigen.module import UnifiedLM
from unigen.rewards.scoring import score_batch
from unigen.rewards.weighting import ModalityWeighting
from unigen.worlds.shapes.grammar import benchmark_prompts, category_pool, sample_prompts
from unigen.worlds.shapes.report import write_report, write_seed_table
from unigen.worlds.shapes.rewards import PlanReward, ShapesImageReward
from unigen.worlds.shapes.vocab import CATEGORIES

DEFAULT_BASE = Path(__file__).resolve().parent / "assets" / "base"
"""The committed base model (``configs/shapes/pretrain.yaml``, exported with ``run.py export``)."""

WEIGHTINGS = {
    "text": ModalityWeighting(scheme="rwr", rewards={"text/shapes_plan": 1.0}, beta=0.25, max_weight=4.0),
    "image": ModalityWeighting(scheme="filter", rewards={"image/shapes_exact": 1.0}, threshold=0.5,
                               normalize=True, max_weight=8.0),
}
"""Per-modality schemes: text by plan score (exp(r/0.25), batch-normalised); image RAFT-style
(keep correct drawings, re-normalised to mean 1). ``none`` / ``text`` / ``image`` / ``both`` pick
which modalities are weighted; the others train unweighted."""


@dataclass
class FitSettings:
    """The reward-weighted fit."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 3.0e-4
    warmup_steps: int = 20


def draw(model: UnifiedModel, records: list[PromptRecord], samples: int, sampling: SamplingConfig, seed: int,
         desc: str) -> list[Trajectory]:
    """K samples per prompt with a progress bar (images/s)."""
    with tqdm(total=len(records) * samples, desc=desc, unit="img") as bar:
        return generate_trajectories(model, records, samples, sampling, seed, desc, batch_size=32,
                                     on_batch=lambda results: bar.update(len(results)))


def evaluate(model: UnifiedModel, records: list[PromptRecord], samples: int, sampling: SamplingConfig,
             seed: int, desc: str) -> tuple[dict, list[Trajectory]]:
    """Per-category judge accuracy (GenEval averaging), switch rate and reasoning length."""
    trajs = draw(model, records, samples, sampling, seed, desc)
    scores = ShapesImageReward()(trajs)
    rows = [{"category": t.category, "score": s, "switched": t.generation["switched"],
             "reasoning_tokens": t.generation["reasoning_tokens"]} for t, s in zip(trajs, scores)]
    return summarize(rows, "categories", f"shapes/{desc}"), trajs


def category_weights(strategy: str, base_summary: dict, bench: list[PromptRecord]) -> dict[str, float]:
    """Prompt mix per strategy: failure rates (targeted), the world's natural mix (broad), the benchmark's mix."""
    if strategy == "targeted":
        return {c: 1.0 - (base_summary["categories"].get(c, {}).get("score") or 0.0) for c in CATEGORIES}
    if strategy == "broad":
        return {c: float(len(category_pool(c, "train"))) for c in CATEGORIES}
    if strategy == "benchmark_aligned":
        return {c: float(sum(r.category == c for r in bench)) for c in CATEGORIES}
    raise ValueError(f"unknown strategy '{strategy}'")


def build_prompts(strategy: str, base_summary: dict, bench: list[PromptRecord], budget: int, floor: float,
                  seed: int) -> tuple[list[PromptRecord], dict[str, int]]:
    """The training prompt set: per-category budgets from ``allocate``, prompts from the train split."""
    counts = allocate(category_weights(strategy, base_summary, bench), budget, floor)
    records = []
    for i, (category, n) in enumerate(sorted(counts.items())):
        if n:
            records += sample_prompts(n, seed * 100 + i, {category: 1.0}, "train", id_prefix=f"loop-{category}")
    check_no_overlap(records, [r.prompt for r in bench], "the ShapesWorld held-out benchmark")
    return records, counts


def score(trajs: list[Trajectory]) -> None:
    """Fill ``rewards``: the exact image judge and the plan check."""
    rewards = {"shapes_exact": ShapesImageReward(), "shapes_plan": PlanReward()}
    for traj, filled in zip(trajs, score_batch(trajs, rewards, {})):
        traj.rewards = filled


def fit(base: str, data_dir: Path, run_dir: Path, weighting: str, settings: FitSettings, seed: int) -> UnifiedModel:
    """Reward-weighted fit in unified mode; saves the post-trained model to ``run_dir/model``."""
    L.seed_everything(seed, verbose=False)
    modalities = {"none": (), "text": ("text",), "image": ("image",), "both": ("text", "image")}[weighting]
    callback = RewardWeighting(**{m: WEIGHTINGS[m] for m in modalities})
    module = UnifiedLM(model=base, lr=settings.lr, warmup_steps=settings.warmup_steps)
    data = TrajectoryDataModule([str(data_dir / "train-*.tar")], batch_size=settings.batch_size, mode="unified",
                                num_workers=0, shuffle_buffer=2000, shardshuffle=False, seed=seed)
    trainer = L.Trainer(accelerator="cpu", devices=1, precision="32-true", max_steps=settings.steps,
                        gradient_clip_val=1.0, log_every_n_steps=10, enable_checkpointing=False,
                        logger=L.pytorch.loggers.TensorBoardLogger(run_dir, name="tensorboard", version="fit"),
                        callbacks=[callback])
    trainer.fit(module, data)
    model = module.net.eval()
    tmp = run_dir / "model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    os.replace(tmp, run_dir / "model")
    return model


def run_seed(base: str, out: Path, seed: int, strategy: str, weighting: str, eval_per_category: int,
             eval_samples: int, budget: int, floor: float, samples_per_prompt: int, sampling: SamplingConfig,
             settings: FitSettings) -> dict:
    """One full pass of the method; every stage resumable."""
    run_dir = out / f"seed-{seed}"
    results_path = run_dir / "results.json"
    if results_path.exists():
        return json.loads(results_path.read_text())
    bench = benchmark_prompts(eval_per_category, seed=0)
    base_model = load_model(base).eval()
    before_explicit, explicit_trajs = evaluate(base_model, bench, eval_samples, replace(sampling, mode="explicit"),
                                               seed, "base-explicit")
    before_unified, _ = evaluate(base_model, bench, eval_samples, replace(sampling, mode="unified"), seed,
                                 "base-unified")
    records, counts = build_prompts(strategy, before_explicit, bench, budget, floor, seed)
    write_prompts(run_dir / "prompts.jsonl", records)
    data_dir, complete = run_dir / "data", run_dir / "data" / "complete.json"
    if not complete.exists():
        shutil.rmtree(data_dir, ignore_errors=True)
        trajs = draw(base_model, records, samples_per_prompt, replace(sampling, mode="explicit"), seed + 1,
                     "self-generate")
        score(trajs)
        for index in range(0, len(trajs), 256):
            write_shard(data_dir, "train", index // 256, trajs[index:index + 256])
        correct = sum(t.rewards.get("image", {}).get("shapes_exact", 0) for t in trajs) / max(1, len(trajs))
        atomic_write_text(complete, json.dumps({"trajectories": len(trajs), "image_correct": correct}))
    if (run_dir / "model").is_dir():
        model = load_model(str(run_dir / "model")).eval()
    else:
        model = fit(base, data_dir, run_dir, weighting, settings, seed)
    after, after_trajs = evaluate(model, bench, eval_samples, replace(sampling, mode="unified"), seed, "post-unified")
    results = {
        "seed": seed, "strategy": strategy, "weighting": weighting, "budget": counts,
        "self_generated": json.loads(complete.read_text()),
        "base_explicit": before_explicit, "base_unified": before_unified, "post_unified": after,
    }
    write_report(run_dir, results, explicit_trajs, after_trajs)
    atomic_write_text(results_path, json.dumps(results, indent=1))
    return results


def loop(
    out: str = "outputs/loop",
    base: str = str(DEFAULT_BASE),
    seeds: list[int] = [0],
    strategy: Literal["targeted", "broad", "benchmark_aligned"] = "targeted",
    weighting: Literal["none", "text", "image", "both"] = "both",
    eval_per_category: int = 12,
    eval_samples: int = 8,
    budget: int = 512,
    floor: float = 0.05,
    samples_per_prompt: int = 8,
    sampling: SamplingConfig = SamplingConfig(max_reasoning_tokens=40, cfg=3.0, text_temperature=0.7,
                                              image_temperature=0.7),
    fit_settings: FitSettings = FitSettings(),
) -> dict:
    """Run the method on ShapesWorld for each seed and write a report per seed plus a summary.

    Args:
        out: output folder (``seed-<s>/``: prompts, shards, TensorBoard logs, model, report).
        base: the base model (a transformers folder); default: the committed ShapesWorld base.
        seeds: one full pass per seed; several seeds give mean and spread.
        strategy: training prompt set: ``targeted`` (failure rates), ``broad`` (the world's natural
            mix), ``benchmark_aligned`` (the benchmark's category mix).
        weighting: which modalities' losses are reward-weighted (the paper's ablation).
        eval_per_category: held-out benchmark prompts per category (at most; some have fewer).
        eval_samples: samples per benchmark prompt.
        budget: training prompts.
        floor: minimum share of the budget per category.
        samples_per_prompt: K self-generated trajectories per training prompt.
        sampling: sampler settings (mode is set per stage).
        fit_settings: the reward-weighted fit.
    """
    runs = [run_seed(base, Path(out), s, strategy, weighting, eval_per_category, eval_samples, budget, floor,
                     samples_per_prompt, sampling, fit_settings) for s in seeds]
    return write_seed_table(Path(out), runs)


def main(argv: list[str]) -> None:
    run_function(loop, argv, "run.py loop")
