"""The evaluate stage: draw benchmark prompts, write the benchmark's official layout, unigen's
records, scores and a summary (resumable; slices and shards over processes)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from unigen.evals.benchmark import Benchmark, Layout, load_benchmark
from unigen.evals.records import finished_indices
from unigen.evals.runner import (benchmark_digest, draw_and_score, layout_of, remove_stale_temporaries,
                                 summarize_folder, too_long_samples, write_prompt)
from unigen.evals.selection import select
from unigen.generation import SamplingConfig
from unigen.generation.sampler import fits_context
from unigen.pipeline.stage import as_dict, check_settings
from unigen.registry import Spec
from unigen.rewards import REWARDS
from unigen.rewards.contract import Reward
from unigen.scale.ranks import barrier, join


@dataclass
class EvaluateSettings:
    """What to evaluate, on which benchmark, scored by which reward."""

    benchmark: Spec
    """The benchmark: ``{class_path: geneval, init_args: {path: <evaluation_metadata.jsonl>}}``; short
    names ``geneval``, ``dpg_bench``, ``t2i_compbench``, ``wise``, ``oneig``, ``oneig_zh``, ``shapes``,
    or your own loader."""
    model: str = "janus-tiny"
    """A unigen ``.ckpt``, a preset name, an architecture YAML or a transformers folder."""
    outdir: str = "evals/run"
    """Output folder: the benchmark's official layout (docs/method.md), ``records/``,
    ``evaluate-settings.json``, ``summary.json``, ``summary.md`` (with the official scoring command),
    ``grid.png``."""
    mode: Literal["unified", "explicit", "direct", "interleaved"] = "unified"
    """Generation mode (overrides ``sampling.mode``); ``interleaved`` scores each sample's final
    image and keeps the earlier ones under ``records/turns/``."""
    reward: Spec | None = "color_match"
    """The reward scoring each sample (short name, import path or ``{class_path, init_args}``);
    ``null``: none (then run the benchmark's official scorer on the folder)."""
    samples_per_prompt: int = 4
    """Images per prompt (GenEval uses 4)."""
    prompts: str | None = None
    """Benchmark indices ``start:stop`` to draw (None = all)."""
    max_prompts: int | None = None
    """Only this many of them, taken from the categories in turn (None = all); files keep their
    benchmark index, so a later run with a larger value adds to the same folder."""
    shard: str | None = None
    """``i/n``: draw every n-th of the selected prompts from the i-th on; processes on shards 0/n ...
    n-1/n of one ``outdir`` write the same folder as one process. (Under Slurm or torchrun the
    ranks split the selection by themselves: no ``shard`` needed.)"""
    overlong: Literal["skip", "raise"] = "skip"
    """A prompt that does not fit the model's context: ``skip`` writes its samples as failures
    (placeholders, counted in the summary); ``raise`` refuses before drawing anything."""
    batch_prompts: int = 8
    """Prompts drawn together in one sampler call (does not change the samples)."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Sampler settings (reasoning length, temperatures, CFG, ...)."""
    seed: int = 0
    """Run seed; sample k of a prompt gets a seed derived from (seed, prompt id, k), so results do not
    depend on batching, sharding or resuming."""
    device: str = "cpu"
    """Torch device of the model."""
    grid_prompts: int = 16
    """Prompts shown (first sample each) in ``grid.png``."""


UNRECORDED = ("outdir", "prompts", "max_prompts", "shard", "overlong", "batch_prompts", "device", "grid_prompts")
"""Settings that do not change a finished prompt's files (processes sharing a folder may differ in them)."""


def evaluate(settings: EvaluateSettings) -> Path:
    """Draw and score a benchmark in its official layout, with unigen's records and a summary.

    Resumable (finished prompts are kept); returns the output folder (its summary:
    ``unigen.evals.summary.read_summary``). As N processes (Slurm tasks, torchrun ranks), rank r
    draws the r-th of every N selected prompts and rank 0 writes the summary once all are drawn."""
    s = settings
    if s.samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt must be >= 1, got {s.samples_per_prompt}")
    ranks = join()
    bench = load_benchmark(s.benchmark)
    layout = layout_of(bench)
    indices = select(bench, s.prompts, s.max_prompts, s.shard)
    layout.check(bench, indices, s.samples_per_prompt)
    outdir = Path(s.outdir)
    recorded = {k: v for k, v in as_dict(s).items() if k not in UNRECORDED}
    outdir.mkdir(parents=True, exist_ok=True)
    check_settings(outdir / "evaluate-settings.json", {**recorded, "benchmark_sha256": benchmark_digest(bench)})
    if ranks.is_zero and s.shard is None:  # a --shard process may share the folder with others still writing
        remove_stale_temporaries(outdir)
    barrier()
    done = finished_indices(outdir)
    todo = [i for i in ranks.part(indices) if i not in done]
    if todo:
        reward = REWARDS.build(s.reward) if s.reward is not None else None
        draw(s, bench, layout, todo, reward)
    barrier()
    if ranks.is_zero:
        summary = summarize_folder(outdir, bench, layout, s.samples_per_prompt, s.grid_prompts)
        print(f"{bench.name}: overall {summary['overall']} over {summary['scored']} scored samples, "
              f"{summary['failed']} failed (no image), {summary['prompts']['finished']}/{len(bench.prompts)} prompts "
              f"-> {outdir}; official scoring (OUT={outdir.resolve()}): see {outdir}/summary.md")
    barrier()
    return outdir


def draw(s: EvaluateSettings, bench: Benchmark, layout: Layout, todo: list[int], reward: Reward | None) -> None:
    """Draw, score and write the prompts ``todo``; over-long ones per ``s.overlong``."""
    from unigen.checkpoints import load_unified

    net = load_unified(s.model, s.device)
    config, size = replace(s.sampling, mode=s.mode), net.spec.image.size
    too_long = [i for i in todo if not fits_context(net, bench.prompts[i].prompt, config)]
    if too_long and s.overlong == "raise":
        raise ValueError(f"{len(too_long)} of {len(todo)} prompts do not fit the model's context of "
                         f"{net.spec.max_seq_len} tokens with this reasoning/image budget "
                         f"(first: index {too_long[0]}); use --overlong skip to count them as failures")
    for i in too_long:
        write_prompt(s.outdir, bench, layout, i,
                     too_long_samples(bench.prompts[i], s.samples_per_prompt, s.seed, reward, size), size)
    if too_long:
        print(f"{len(too_long)} prompts do not fit the model's context: written as failures (prompt_too_long)")
    skipped = set(too_long)
    drawable = [i for i in todo if i not in skipped]
    with tqdm(total=len(todo), initial=len(skipped), desc=f"evaluate {bench.name}", unit="prompt") as bar:
        for start in range(0, len(drawable), s.batch_prompts):
            batch = drawable[start:start + s.batch_prompts]
            groups = draw_and_score(net, [bench.prompts[i] for i in batch], s.samples_per_prompt, config, reward,
                                    s.seed, s.model)
            for index, group in zip(batch, groups):
                write_prompt(s.outdir, bench, layout, index, group, size)
            bar.update(len(batch))
