"""Draw a benchmark's prompts with a model, write them in the benchmark's official layout, score
and summarise them.

``draw_and_score`` is shared by ``run.py evaluate`` (this module's ``evaluate``: official layout +
unigen's records, resumable, sliceable over processes) and the periodic evaluation callback (in
memory).
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Literal

import torch
from tqdm import tqdm

from unigen.benchmarks.base import Benchmark, load_benchmark
from unigen.benchmarks.layouts import Layout, layout_for, placeholder_png
from unigen.benchmarks.records import SampleOutput, check_run, claim_run, finished_indices, read_records, \
    tmp_dir, write_files, write_record
from unigen.benchmarks.scorers import Scorer, resolve_scorer
from unigen.benchmarks.selection import select
from unigen.benchmarks.summary import image_grid, png_image, summarize, write_summary
from unigen.commands import run_function
from unigen.data.prompts import PromptRecord
from unigen.data.trajectory import MODES, Trajectory
from unigen.generation import SamplingConfig
from unigen.generation.sampler import fits_context
from unigen.generation.trajectories import generate_trajectories, sample_seed
from unigen.models.base import UnifiedModel

OVERLONG = ("skip", "raise")


def score_samples(scorer: Scorer | None, trajs: list[Trajectory], image_size: int) -> list[float | None]:
    """Scores of ``trajs``. A trajectory without an image is shown to the scorer as the placeholder the
    official layouts hold (so the scorer still decides whether it applies to the prompt: None) and
    any score it gets becomes 0: a failure never earns credit and is never left out."""
    if scorer is None:
        return [None] * len(trajs)
    shown = [t if t.png is not None else replace(t, png=placeholder_png(image_size)) for t in trajs]
    scores = scorer(shown)
    if len(scores) != len(trajs):
        raise ValueError(f"scorer returned {len(scores)} scores for {len(trajs)} samples")
    return [None if s is None else (float(s) if t.png is not None else 0.0) for t, s in zip(trajs, scores)]


@torch.no_grad()
def draw_and_score(model: UnifiedModel, records: list[PromptRecord], samples_per_prompt: int,
                   config: SamplingConfig, scorer: Scorer | None, seed: int, model_id: str) -> list[list[SampleOutput]]:
    """``samples_per_prompt`` samples for each record (in record order), scored when a scorer is given
    (``score_samples``); a sample without an image is a failure (``no_image``)."""
    trajs = generate_trajectories(model, records, samples_per_prompt, config, seed, model_id, decode_png=True)
    scores = score_samples(scorer, trajs, model.spec.image_size)
    by_prompt: dict[str, list[tuple[int, SampleOutput]]] = {r.id: [] for r in records}
    for traj, score in zip(trajs, scores):
        gen = traj.generation
        sample = SampleOutput(traj.png, traj.reasoning, score, bool(gen.get("switched", traj.has_image)),
                              int(gen.get("reasoning_tokens", 0)), gen.get("seed"), str(gen.get("stop", "")),
                              None if traj.png is not None else "no_image")
        by_prompt[traj.prompt_id].append((traj.sample_idx, sample))
    return [[s for _, s in sorted(by_prompt[r.id], key=lambda x: x[0])] for r in records]


def too_long_samples(record: PromptRecord, samples_per_prompt: int, seed: int, scorer: Scorer | None,
                     image_size: int) -> list[SampleOutput]:
    """The failed samples of a prompt that does not fit the model's context (``--overlong skip``)."""
    trajs = [Trajectory(record.id, k, record.prompt, category=record.category, metadata=record.metadata)
             for k in range(samples_per_prompt)]
    scores = score_samples(scorer, trajs, image_size)
    return [SampleOutput(None, "", score, False, 0, sample_seed(seed, record.id, k), "", "prompt_too_long")
            for k, score in enumerate(scores)]


def sample_rows(records: list[PromptRecord], samples: list[list[SampleOutput]]) -> list[dict]:
    """Flatten per-prompt samples into the rows ``summarize`` reads."""
    return [{"category": r.category, "score": s.score, "switched": s.switched, "reasoning_tokens": s.reasoning_tokens,
             "failure": s.failure} for r, group in zip(records, samples) for s in group]


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


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
    write_files(outdir, files)
    record = bench.prompts[index]
    write_record(outdir, index, {"id": record.id, "category": record.category, "prompt": record.prompt,
                                 "image_size": image_size}, sorted(files), samples)


def summarize_folder(outdir: str | Path, bench: Benchmark, layout: Layout, samples_per_prompt: int,
                     grid_prompts: int = 16) -> dict:
    """Summary over every finished prompt under ``outdir`` (all processes'), with the grid and the
    official scoring command in ``summary.md``. Under an exclusive lock: of processes sharing the
    folder, the last to summarise sees every record the others wrote."""
    lock = tmp_dir(outdir) / "summary.lock"
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
    images, captions = [], []
    for index in sorted(records)[:grid_prompts]:
        first = Path(outdir) / next(f for f in records[index]["files"] if f.endswith(".png"))
        images.append(png_image(first.read_bytes() if first.is_file() else None))
        captions.append(bench.prompts[index].prompt)
    image_size = next(iter(records.values()))["image_size"] if records else 0
    notes = ("Official scoring of this folder, with `OUT` set to its path:\n\n"
             + layout.scoring("$OUT", bench, samples_per_prompt, image_size))
    write_summary(outdir, summary, image_grid(images, captions) if images else None, notes, tmp_dir(outdir))
    return summary


def evaluate(model: str, benchmark: str, benchmark_path: str, outdir: str, mode: Literal["unified", "explicit", "direct"] = "unified",
             samples_per_prompt: int = 4, prompts: str | None = None, max_prompts: int | None = None,
             shard: str | None = None,
             overlong: Literal["skip", "raise"] = "skip", batch_prompts: int = 8,
             scorer: str | dict | None = "color_match", sampling: SamplingConfig = SamplingConfig(), seed: int = 0,
             device: str = "cpu", grid_prompts: int = 16) -> dict:
    """Draw benchmark prompts, write the benchmark's official layout, records, scores and a summary.

    Args:
        model: a unigen ``.ckpt``, a preset name, an architecture YAML or a transformers folder.
        benchmark: registered benchmark name (``geneval``, ``dpg_bench``, ``t2i_compbench``, ``wise``,
            ``oneig``, ``oneig_zh``).
        benchmark_path: the benchmark's published prompt file or folder.
        outdir: output folder: the official layout (see ``docs/method.md``), ``records/``, ``run.json``,
            ``summary.json``, ``summary.md`` (with the official scoring command), ``grid.png``.
        mode: ``unified`` | ``explicit`` | ``direct`` (overrides ``sampling.mode``).
        samples_per_prompt: images per prompt (GenEval uses 4).
        prompts: benchmark indices ``start:stop`` to draw (None = all).
        max_prompts: only this many of them, spread over categories (None = all); files keep their
            benchmark index, so a later run with a larger value adds to the same folder.
        shard: ``i/n``: draw every n-th of the selected prompts from the i-th on; processes on
            shards 0/n ... n-1/n of one ``--outdir`` write the same folder as one process.
        overlong: a prompt that does not fit the model's context: ``skip`` writes its samples as
            failures (placeholders, counted in the summary); ``raise`` refuses before drawing anything.
        batch_prompts: prompts drawn together in one sampler call (does not change the samples).
        scorer: built-in scorer name, ``package.module:attribute`` (any reward), a
            ``{class_path, init_args}`` mapping, or ``none``.
        sampling: sampler settings (reasoning length, temperatures, CFG, ...).
        seed: run seed; sample k of a prompt gets a seed derived from (seed, prompt id, k), so results do
            not depend on batching, sharding or resuming.
        device: torch device for the model.
        grid_prompts: prompts shown (first sample each) in ``grid.png``.
    """
    if mode not in MODES:
        raise ValueError(f"mode '{mode}' not in {MODES}")
    if samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt must be >= 1, got {samples_per_prompt}")
    if overlong not in OVERLONG:
        raise ValueError(f"overlong '{overlong}' not in {OVERLONG}")
    bench = load_benchmark(benchmark, benchmark_path)
    layout = layout_for(bench.name)
    indices = select(bench, prompts, max_prompts, shard)
    layout.check(bench, indices, samples_per_prompt)
    config = replace(sampling, mode=mode)
    settings = {"benchmark": bench.name, "benchmark_sha256": benchmark_digest(bench), "model": model,
                "samples_per_prompt": samples_per_prompt, "sampling": asdict(config), "seed": seed,
                "scorer": scorer, "overlong": overlong, "device": torch.device(device).type}
    check_run(outdir, settings)
    done = finished_indices(outdir)
    todo = [i for i in indices if i not in done]
    if todo:
        draw_prompts(outdir, bench, layout, todo, model, device, config, samples_per_prompt, overlong,
                     resolve_scorer(scorer), seed, batch_prompts, settings)
    summary = summarize_folder(outdir, bench, layout, samples_per_prompt, grid_prompts)
    print(f"{bench.name}: overall {summary['overall']} over {summary['scored']} scored samples, "
          f"{summary['failed']} failed (no image), {summary['prompts']['finished']}/{len(bench.prompts)} prompts "
          f"-> {outdir}; official scoring (OUT={Path(outdir).resolve()}): see {outdir}/summary.md")
    return summary


def draw_prompts(outdir: str, bench: Benchmark, layout: Layout, todo: list[int], model: str, device: str,
                 config: SamplingConfig, samples_per_prompt: int, overlong: str, score_fn: Scorer | None, seed: int,
                 batch_prompts: int, settings: dict) -> None:
    """Draw, score and write the prompts ``todo``; over-long ones per the ``overlong`` policy. The
    folder is claimed for ``settings`` (``run.json``) just before its first file is written."""
    from unigen.checkpoints import load_unified

    net = load_unified(model, device)
    size = net.spec.image_size
    too_long = [i for i in todo if not fits_context(net, bench.prompts[i].prompt, config)]
    if too_long and overlong == "raise":
        raise ValueError(f"{len(too_long)} of {len(todo)} prompts do not fit the model's context of "
                         f"{net.spec.max_seq_len} tokens with this reasoning/image budget "
                         f"(first: index {too_long[0]}); use --overlong skip to count them as failures")
    claim_run(outdir, settings)
    for i in too_long:
        write_prompt(outdir, bench, layout, i, too_long_samples(bench.prompts[i], samples_per_prompt, seed, score_fn,
                                                                size), size)
    if too_long:
        print(f"{len(too_long)} prompts do not fit the model's context: written as failures (prompt_too_long)")
    skipped = set(too_long)
    drawable = [i for i in todo if i not in skipped]
    with tqdm(total=len(todo), initial=len(skipped), desc=f"evaluate {bench.name}", unit="prompt") as bar:
        for batch in _batches(drawable, batch_prompts):
            records = [bench.prompts[i] for i in batch]
            groups = draw_and_score(net, records, samples_per_prompt, config, score_fn, seed, model)
            for index, group in zip(batch, groups):
                write_prompt(outdir, bench, layout, index, group, size)
            bar.update(len(batch))


def main(argv: list[str]) -> None:
    """``run.py evaluate --model ckpt --benchmark geneval --benchmark_path file --outdir dir ...``"""
    run_function(evaluate, argv, "run.py evaluate")
