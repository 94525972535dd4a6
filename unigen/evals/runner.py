"""Draw a benchmark's prompts with a model, write them in the benchmark's official layout, score
and summarise them. An interleaved sample is scored (and laid out) by its **final** image; its
earlier images are kept under ``records/turns/`` and its first image's score in its record.

``draw_and_score`` is shared by the evaluate stage (``unigen.pipeline.evaluate``: official layout +
unigen's records, resumable, sliceable over processes) and the periodic evaluation callback (in
memory).
"""

from __future__ import annotations

import fcntl
import hashlib
from dataclasses import replace
from pathlib import Path

import torch

from unigen.data.prompts import PromptRecord
from unigen.data.trajectory import Trajectory
from unigen.evals.benchmark import Benchmark, Layout
from unigen.evals.benchmarks.geneval import GenEvalLayout
from unigen.evals.benchmarks.images import placeholder_png
from unigen.evals.records import (SampleOutput, TurnOutputs, read_records, tmp_dir, turn_image_path, write_files,
                                  write_record)
from unigen.evals.summary import image_grid, png_image, summarize, write_summary
from unigen.generation import SamplingConfig
from unigen.generation.rollouts import generate_trajectories, sample_seed
from unigen.models.unified import UnifiedModel
from unigen.rewards.contract import Reward


def layout_of(bench: Benchmark) -> Layout:
    """The layout ``bench`` is written in: its own, or GenEval's when it names none (``Benchmark.layout``)."""
    return GenEvalLayout() if bench.layout is None else bench.layout


def score_samples(reward: Reward | None, trajs: list[Trajectory], image_size: int) -> list[float | None]:
    """Scores of ``trajs``. A trajectory without an image is shown to the reward as the placeholder the
    official layouts hold (so the reward still decides whether it applies to the prompt: None) and
    any score it gets becomes 0: a failure never earns credit and is never left out."""
    if reward is None:
        return [None] * len(trajs)
    shown = [t if t.png is not None else replace(t, png=placeholder_png(image_size)) for t in trajs]
    scores = reward(shown)
    if len(scores) != len(trajs):
        raise ValueError(f"reward returned {len(scores)} scores for {len(trajs)} samples")
    return [None if s is None else (float(s) if t.png is not None else 0.0) for t, s in zip(trajs, scores)]


@torch.no_grad()
def draw_and_score(model: UnifiedModel, records: list[PromptRecord], samples_per_prompt: int,
                   config: SamplingConfig, reward: Reward | None, seed: int, model_id: str) -> list[list[SampleOutput]]:
    """``samples_per_prompt`` samples for each record (in record order), scored when a reward is given
    (``score_samples``); a sample without an image is a failure (``no_image``)."""
    trajs = generate_trajectories(model, records, samples_per_prompt, config, seed, model_id, decode_png=True)
    views = [t.image_turns() for t in trajs]  # the scored image is the final one
    scores = score_samples(reward, [v[-1] for v in views], model.spec.image.size)
    redrawn = [i for i, v in enumerate(views) if len(v) > 1]
    first_scores = dict(zip(redrawn, score_samples(reward, [views[i][0] for i in redrawn], model.spec.image.size)))
    by_prompt: dict[str, list[tuple[int, SampleOutput]]] = {r.id: [] for r in records}
    for i, (traj, turns, score) in enumerate(zip(trajs, views, scores)):
        gen, final = traj.generation, turns[-1]
        sample = SampleOutput(final.png, traj.reasoning, score, bool(gen.get("switched", traj.has_image)),
                              int(gen.get("reasoning_tokens", 0)), gen.get("seed"), str(gen.get("stop", "")),
                              None if final.png is not None else "no_image")
        if config.mode == "interleaved":
            sample.turns = TurnOutputs(traj.num_images, [t.png for t in turns[:-1]], first_scores.get(i, score),
                                       [t.text for t in traj.turns])
        by_prompt[traj.prompt_id].append((traj.sample_idx, sample))
    return [[s for _, s in sorted(by_prompt[r.id], key=lambda x: x[0])] for r in records]


def too_long_samples(record: PromptRecord, samples_per_prompt: int, seed: int, reward: Reward | None,
                     image_size: int) -> list[SampleOutput]:
    """The failed samples of a prompt that does not fit the model's context (``--overlong skip``)."""
    trajs = [Trajectory(record.id, k, record.prompt, category=record.category, metadata=record.metadata)
             for k in range(samples_per_prompt)]
    scores = score_samples(reward, trajs, image_size)
    return [SampleOutput(None, "", score, False, 0, sample_seed(seed, record.id, k), "", "prompt_too_long")
            for k, score in enumerate(scores)]


def sample_rows(records: list[PromptRecord], samples: list[list[SampleOutput]]) -> list[dict]:
    """Flatten per-prompt samples into the rows ``summarize`` reads."""
    return [{"category": r.category, "score": s.score, "switched": s.switched, "reasoning_tokens": s.reasoning_tokens,
             "failure": s.failure, **({"turns": s.turns.record([])} if s.turns else {})}
            for r, group in zip(records, samples) for s in group]


def benchmark_digest(bench: Benchmark) -> str:
    """sha256 over the prompts' ids and texts: a run folder belongs to one benchmark release."""
    digest = hashlib.sha256()
    for record in bench.prompts:
        digest.update(f"{record.id}\0{record.prompt}\0".encode("utf-8"))
    return digest.hexdigest()


def write_prompt(outdir: str | Path, bench: Benchmark, layout: Layout, index: int, samples: list[SampleOutput],
                 image_size: int) -> None:
    """The prompt's official-layout files, then its record (which marks it finished)."""
    files = layout.render(bench, index, [s.png for s in samples], image_size)
    earlier = {turn_image_path(index, k, t): png for k, s in enumerate(samples) if s.turns
               for t, png in enumerate(s.turns.earlier) if png is not None}
    write_files(outdir, {**earlier, **files})
    record = bench.prompts[index]
    write_record(outdir, index, {"id": record.id, "category": record.category, "prompt": record.prompt,
                                 "image_size": image_size}, sorted(files), samples)


def first_samples(outdir: str | Path, prompts: int, records: dict[int, dict] | None = None
                  ) -> list[tuple[str, bytes | None]]:
    """(prompt, PNG holding its first sample) of the first ``prompts`` finished prompts of an
    evaluation folder, whatever its layout (a grid layout's PNG shows all of the prompt's samples)."""
    records = read_records(outdir) if records is None else records
    out = []
    for index in sorted(records)[:prompts]:
        png = Path(outdir) / next(f for f in records[index]["files"] if f.endswith(".png"))
        out.append((records[index]["prompt"], png.read_bytes() if png.is_file() else None))
    return out


SUMMARY_LOCK = "summary.lock"


def remove_stale_temporaries(outdir: str | Path) -> list[Path]:
    """Delete what a killed writer left under ``<outdir>/.tmp/`` (its lock file stays); call it only
    while no other process writes the folder."""
    stale = [p for p in tmp_dir(outdir).glob("*") if p.is_file() and p.name != SUMMARY_LOCK]
    for path in stale:
        path.unlink()
    return stale


def summarize_folder(outdir: str | Path, bench: Benchmark, layout: Layout, samples_per_prompt: int,
                     grid_prompts: int = 16) -> dict:
    """Summary over every finished prompt under ``outdir`` (all processes'), with the grid and the
    official scoring command in ``summary.md``. Under an exclusive lock: of processes sharing the
    folder, the last to summarise sees every record the others wrote."""
    lock = tmp_dir(outdir) / SUMMARY_LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        return _summarize_folder(outdir, bench, layout, samples_per_prompt, grid_prompts)


def _summarize_folder(outdir: str | Path, bench: Benchmark, layout: Layout, samples_per_prompt: int,
                      grid_prompts: int) -> dict:
    records = read_records(outdir)
    rows = [{**s, "category": entry["category"]} for entry in records.values() for s in entry["samples"]]
    summary = summarize(rows, bench.averaging, bench.name)
    summary["prompts"] = {"finished": len(records), "benchmark": len(bench.prompts)}
    shown = first_samples(outdir, grid_prompts, records)
    images, captions = [png_image(png) for _, png in shown], [prompt for prompt, _ in shown]
    image_size = next(iter(records.values()))["image_size"] if records else 0
    notes = ("Official scoring of this folder, with `OUT` set to its path:\n\n"
             + layout.scoring("$OUT", bench, samples_per_prompt, image_size))
    write_summary(outdir, summary, image_grid(images, captions) if images else None, notes, tmp_dir(outdir))
    return summary


