"""``run.py loop``: the whole method on ShapesWorld, end to end on a CPU.

evaluate the base on the held-out benchmark -> find weak categories -> build a prompt set
(``targeted`` / ``broad`` / ``benchmark_aligned``) -> per round: self-generate K trajectories per
prompt (round 1 with the base in ``explicit`` mode: today's practice, the program appends
begin-of-image; round r > 1 with round r-1's model in ``unified`` mode) -> score them (strict and
GenEval-rule image judge, plan check) -> reward-weighted fit in ``unified`` mode (the model learns
to emit begin-of-image itself), starting from the previous round's model -> evaluate in
``unified`` mode -> report with paired bootstrap intervals.

Every stage writes its output atomically and is skipped when that output exists, so a killed loop
resumes where it stopped. Outputs that depend only on the base and the sampling settings (the base
evaluations, round 1's self-generated data) are keyed by those settings under ``cache`` so runs
that differ only in the fit (e.g. the weighting ablation) share them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
from tqdm import tqdm

from callbacks.reward_weighting import RewardWeighting
from datamodules.trajectories import TrajectoryDataModule
from unigen.commands import run_function
from unigen.benchmarks.targeting import allocate, check_no_overlap
from unigen.data.prompts import PromptRecord, write_prompts
from unigen.data.shards import write_shard
from unigen.data.trajectory import Trajectory
from unigen.files import atomic_write_text
from unigen.generation import SamplingConfig
from unigen.generation.trajectories import generate_trajectories
from unigen.models.base import UnifiedModel
from unigen.models.loading import load_model
from unigen.module import UnifiedLM
from unigen.rewards.command import score_batch
from unigen.rewards.weighting import ModalityWeighting
from unigen.worlds.shapes.grammar import benchmark_prompts, category_pool, sample_prompts
from unigen.worlds.shapes.report import write_report, write_table
from unigen.worlds.shapes.rewards import PlanReward, ShapesImageReward
from unigen.worlds.shapes.vocab import CATEGORIES

DEFAULT_BASE = Path(__file__).resolve().parent / "assets" / "base"
"""The committed base model (``configs/shapes/pretrain.yaml``, exported with ``run.py export``)."""

JUDGE = "image/shapes_strict"
"""The world's training reward and headline metric (exactly the requested objects)."""


def judge_weighting() -> ModalityWeighting:
    """The default of both modalities (the paper's choice: the trajectory's judge reward weights
    text and image alike): RAFT-style, keep trajectories the strict judge accepts, re-normalised
    within each prompt's K samples (a prompt with few correct samples weighs as much as an easy
    one, up to ``max_weight``); the fit streams each prompt's samples together (``group_by_prompt``)."""
    return ModalityWeighting(scheme="filter", rewards={JUDGE: 1.0}, threshold=0.5, group="prompt", normalize=True,
                             max_weight=4.0)


@dataclass
class FitSettings:
    """The reward-weighted fit."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 3.0e-4
    warmup_steps: int = 20
    condition_dropout: float = 0.1
    """Share of samples trained as the unconditional branch classifier-free guidance uses."""
    text: ModalityWeighting = field(default_factory=judge_weighting)
    """Weighting of the text loss (reasoning + switch) when ``weighting`` is ``text`` or ``both``."""
    image: ModalityWeighting = field(default_factory=judge_weighting)
    """Weighting of the image loss when ``weighting`` is ``image`` or ``both``."""


def _key(*parts) -> str:
    """A short stable hash of settings (names cached stage outputs)."""
    text = json.dumps([asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def draw(model: UnifiedModel, records: list[PromptRecord], samples: int, sampling: SamplingConfig, seed: int,
         desc: str) -> list[Trajectory]:
    """K samples per prompt with a progress bar (images/s)."""
    with tqdm(total=len(records) * samples, desc=desc, unit="img") as bar:
        return generate_trajectories(model, records, samples, sampling, seed, desc, batch_size=32,
                                     on_batch=lambda results: bar.update(len(results)))


def evaluate(model: UnifiedModel, records: list[PromptRecord], samples: int, sampling: SamplingConfig,
             seed: int, desc: str) -> dict:
    """Per-sample strict and GenEval-rule judgements (prompts x samples), switches, reasoning length
    and each prompt's first image (PNG, base64) for the report's grid."""
    trajs = draw(model, records, samples, sampling, seed, desc)
    grid = {name: np.array(ShapesImageReward(strict=strict)(trajs), dtype=float).reshape(len(records), samples)
            for name, strict in (("strict", True), ("geneval", False))}
    switched = np.array([t.generation["switched"] for t in trajs], dtype=float).reshape(len(records), samples)
    stage = {"prompt_ids": [r.id for r in records], "categories": [r.category for r in records],
             "strict": grid["strict"].tolist(), "geneval": grid["geneval"].tolist(), "switched": switched.tolist(),
             "switch_rate": float(switched.mean()),
             "first_pngs": [base64.b64encode(t.png).decode() if t.png else None for t in trajs[::samples]],
             "reasoning_tokens": float(np.mean([t.generation["reasoning_tokens"] for t in trajs]))}
    return stage


def cached_evaluation(path: Path, model_source: str | UnifiedModel, records: list[PromptRecord], samples: int,
                      sampling: SamplingConfig, seed: int, desc: str) -> dict:
    """``evaluate`` unless ``path`` holds it already."""
    if path.exists():
        return json.loads(path.read_text())
    model = load_model(model_source).eval() if isinstance(model_source, str) else model_source
    stage = evaluate(model, records, samples, sampling, seed, desc)
    atomic_write_text(path, json.dumps(stage))
    return stage


def category_scores(stage: dict, metric: str = "strict") -> dict[str, float]:
    """Category -> mean score of one evaluation."""
    scores = np.array(stage[metric]).mean(axis=1)
    cats = np.array(stage["categories"])
    return {c: float(scores[cats == c].mean()) for c in dict.fromkeys(stage["categories"])}


def category_weights(strategy: str, base_scores: dict[str, float], bench: list[PromptRecord]) -> dict[str, float]:
    """Prompt mix per strategy over the categories with training prompts (single_object is
    benchmark-only): failure rates (targeted), the world's natural mix (broad), the benchmark's mix."""
    trained = [c for c in CATEGORIES if category_pool(c, "train")]
    if strategy == "targeted":
        return {c: 1.0 - base_scores.get(c, 0.0) for c in trained}
    if strategy == "broad":
        return {c: float(len(category_pool(c, "train"))) for c in trained}
    if strategy == "benchmark_aligned":
        return {c: float(sum(r.category == c for r in bench)) for c in trained}
    raise ValueError(f"unknown strategy '{strategy}'")


def build_prompts(strategy: str, base_scores: dict[str, float], bench: list[PromptRecord], budget: int,
                  floor: float, seed: int) -> tuple[list[PromptRecord], dict[str, int]]:
    """The training prompt set: per-category budgets from ``allocate``, prompts from the train split."""
    counts = allocate(category_weights(strategy, base_scores, bench), budget, floor)
    records = []
    for i, (category, n) in enumerate(sorted(counts.items())):
        if n:
            records += sample_prompts(n, seed * 100 + i, {category: 1.0}, "train", id_prefix=f"loop-{category}")
    check_no_overlap(records, [r.prompt for r in bench], "the ShapesWorld held-out benchmark")
    return records, counts


def score(trajs: list[Trajectory]) -> None:
    """Fill ``rewards``: the strict image judge (training reward), the GenEval-rule judge and the plan check."""
    rewards = {"shapes_strict": ShapesImageReward(strict=True), "shapes_geneval": ShapesImageReward(strict=False),
               "shapes_plan": PlanReward()}
    for traj, filled in zip(trajs, score_batch(trajs, rewards, {})):
        traj.rewards = filled


def self_generate(model: UnifiedModel, records: list[PromptRecord], samples: int, sampling: SamplingConfig,
                  seed: int, data_dir: Path) -> dict:
    """K scored trajectories per prompt in shards (a prompt's samples consecutive); resumable."""
    complete = data_dir / "complete.json"
    if complete.exists():
        return json.loads(complete.read_text())
    shutil.rmtree(data_dir, ignore_errors=True)
    trajs = draw(model, records, samples, sampling, seed, "self-generate")
    score(trajs)
    for index in range(0, len(trajs), 256):
        write_shard(data_dir, "train", index // 256, trajs[index:index + 256])
    correct = float(np.mean([t.rewards.get("image", {}).get("shapes_strict", 0.0) for t in trajs]))
    stats = {"trajectories": len(trajs), "image_correct": correct, "mode": sampling.mode}
    atomic_write_text(complete, json.dumps(stats))
    return stats


def fit(start: str, data_dir: Path, run_dir: Path, weighting: str, settings: FitSettings, seed: int) -> UnifiedModel:
    """Reward-weighted fit in unified mode from ``start``; saves the model to ``run_dir/model``."""
    L.seed_everything(seed, verbose=False)
    modalities = {"none": (), "text": ("text",), "image": ("image",), "both": ("text", "image")}[weighting]
    callback = RewardWeighting(**{m: getattr(settings, m) for m in modalities})
    module = UnifiedLM(model=start, lr=settings.lr, warmup_steps=settings.warmup_steps)
    data = TrajectoryDataModule([str(data_dir / "train-*.tar")], batch_size=settings.batch_size, mode="unified",
                                num_workers=0, shuffle_buffer=2000, shardshuffle=False, seed=seed,
                                condition_dropout=settings.condition_dropout, group_by_prompt=True)
    trainer = L.Trainer(accelerator="cpu", devices=1, precision="32-true", max_steps=settings.steps,
                        gradient_clip_val=1.0, log_every_n_steps=10, enable_checkpointing=False,
                        logger=L.pytorch.loggers.TensorBoardLogger(run_dir, name="tensorboard", version="fit"),
                        callbacks=[callback], enable_model_summary=False)
    trainer.fit(module, data)
    model = module.net.eval()
    tmp = run_dir / "model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    os.replace(tmp, run_dir / "model")
    return model


def run_seed(base: str, out: Path, cache: Path, seed: int, strategy: str, weighting: str, rounds: int,
             post_modes: list[str], eval_per_category: int | None, eval_samples: int, budget: int, floor: float,
             samples_per_prompt: int, sampling: SamplingConfig, settings: FitSettings) -> dict:
    """One full pass of the method (``rounds`` rounds); every stage's finished output is reused (a
    model is loaded only for a stage that still has to run), so more rounds or post modes extend a run."""
    run_dir = out / f"seed-{seed}"
    bench = benchmark_prompts(eval_per_category, seed=0)
    explicit, unified = replace(sampling, mode="explicit"), replace(sampling, mode="unified")
    eval_key = _key(base, eval_per_category, eval_samples, sampling, seed)
    base_explicit = cached_evaluation(cache / f"base-explicit-{eval_key}.json", base, bench, eval_samples, explicit,
                                      seed, "base-explicit")
    base_unified = cached_evaluation(cache / f"base-unified-{eval_key}.json", base, bench, eval_samples, unified,
                                     seed, "base-unified")
    records, counts = build_prompts(strategy, category_scores(base_explicit), bench, budget, floor, seed)
    write_prompts(run_dir / "prompts.jsonl", records)
    start, round_results = base, []
    for r in range(1, rounds + 1):
        round_dir = run_dir / f"round-{r}"
        if r == 1:
            data_dir = cache / f"data-{_key(base, strategy, budget, floor, samples_per_prompt, sampling, seed, eval_key)}"
        else:
            data_dir = round_dir / "data"
        model = None
        if not (data_dir / "complete.json").exists():
            model = load_model(start).eval()
        generated = self_generate(model, records, samples_per_prompt, explicit if r == 1 else unified,
                                  seed + r, data_dir)
        if (round_dir / "model").is_dir():
            model = None
        else:
            model = fit(start, data_dir, round_dir, weighting, settings, seed + 1000 * r)
        posts = {f"post_{mode}": cached_evaluation(round_dir / f"post-{mode}.json", model or str(round_dir / "model"),
                                                   bench, eval_samples, replace(sampling, mode=mode), seed,
                                                   f"post-{mode}-r{r}")
                 for mode in post_modes}
        round_results.append({"round": r, "self_generated": generated, **posts})
        start = str(round_dir / "model")
    results = {"seed": seed, "strategy": strategy, "weighting": weighting, "budget": counts,
               "base_explicit": base_explicit, "base_unified": base_unified, "rounds": round_results}
    write_report(run_dir, results)
    atomic_write_text(run_dir / "results.json", json.dumps(results))
    return results


def loop(
    out: str = "outputs/loop",
    base: str = str(DEFAULT_BASE),
    seeds: list[int] = [0],
    strategy: Literal["targeted", "broad", "benchmark_aligned"] = "targeted",
    weighting: Literal["none", "text", "image", "both"] = "both",
    rounds: int = 1,
    post_modes: list[Literal["unified", "explicit", "direct"]] = ["unified"],
    eval_per_category: int | None = None,
    eval_samples: int = 32,
    budget: int = 512,
    floor: float = 0.05,
    samples_per_prompt: int = 8,
    sampling: SamplingConfig = SamplingConfig(max_reasoning_tokens=40, cfg=2.0, text_temperature=0.7,
                                              image_temperature=0.7),
    fit_settings: FitSettings = FitSettings(),
    cache: str | None = None,
) -> dict:
    """Run the method on ShapesWorld for each seed and write a report per seed plus a summary.

    Args:
        out: output folder (``seed-<s>/``: prompts, rounds (shards, TensorBoard logs, model), report).
        base: the base model (a transformers folder); default: the committed ShapesWorld base.
        seeds: one full pass per seed; the summary's intervals resample seeds too.
        strategy: training prompt set: ``targeted`` (failure rates), ``broad`` (the world's natural
            mix), ``benchmark_aligned`` (the benchmark's category mix).
        weighting: which modalities' losses are reward-weighted (the paper's ablation).
        rounds: rounds of self-generation and fit; round r > 1 samples with round r-1's model in
            unified mode and fits from it.
        post_modes: modes the post-trained models are evaluated in (``unified`` first; add
            ``direct`` for the reasoning ablation: the same model drawing without its reasoning).
        eval_per_category: held-out benchmark prompts per category (default: all, six each).
        eval_samples: samples per benchmark prompt.
        budget: training prompts.
        floor: minimum share of the budget per category.
        samples_per_prompt: K self-generated trajectories per training prompt.
        sampling: sampler settings (mode is set per stage).
        fit_settings: the reward-weighted fit.
        cache: folder of outputs shared by runs with the same settings (base evaluations, round 1's
            data); default ``<out>/cache``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not post_modes or post_modes[0] != "unified":
        raise ValueError(f"post_modes must start with 'unified' (the method's result), got {post_modes}")
    root = Path(out)
    shared = Path(cache) if cache else root / "cache"
    shared.mkdir(parents=True, exist_ok=True)
    runs = [run_seed(base, root, shared, s, strategy, weighting, rounds, post_modes, eval_per_category, eval_samples, budget,
                     floor, samples_per_prompt, sampling, fit_settings) for s in seeds]
    return write_table(root, runs)


def main(argv: list[str]) -> None:
    run_function(loop, argv, "run.py loop")
