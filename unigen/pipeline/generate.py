"""The generate stage: prompt files -> K self-generated trajectories per prompt -> shards.

Shard i holds prompts [i*P, (i+1)*P) x K samples (P = ``prompts_per_shard``), so the shard a
prompt lands in never depends on earlier progress: a re-run skips the shards recorded in the index
and regenerates only the missing ones, with the same per-(prompt, sample) seeds. A run manifest
(``<prefix>-run.json``) refuses a resume whose prompts or sampling settings differ.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from unigen.checkpoints import load_unified
from unigen.data.prompts import PromptRecord, read_prompts
from unigen.data.shards import finished_shards, shard_name, write_shard
from unigen.data.trajectory import Trajectory
from unigen.generation.config import SampleResult, SamplingConfig
from unigen.generation.rollouts import generate_trajectories
from unigen.pipeline.stage import check_settings

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class GenerateSettings:
    """What to generate and where."""

    prompts: list[str] = field(default_factory=list)
    """Prompt JSONL file(s): {"id", "prompt", "category"?, "metadata"?} per line; ids unique across files."""
    out_dir: str = "shards"
    """Output folder for ``<prefix>-NNNNNN.tar`` shards, their index and the run manifest."""
    model: str = "janus-tiny"
    """A unigen ``.ckpt``, a transformers folder, an architecture YAML or a preset name."""
    model_id: str | None = None
    """Recorded in every trajectory (default: ``model``)."""
    samples_per_prompt: int = 4
    """K trajectories per prompt."""
    prompts_per_shard: int = 16
    """Prompts per shard (shard i holds prompts [i*P, (i+1)*P) x K samples)."""
    batch_size: int = 32
    """Rows per sampler call (each doubles with CFG); does not change any sample."""
    seed: int = 0
    """Run seed; sample k of prompt p uses a seed derived from (seed, p's id, k)."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Sampler settings, ``mode`` included (``explicit``: the program appends begin-of-image)."""
    device: str = "cpu"
    """Torch device of the model."""
    dtype: str = "float32"
    """float32 | bfloat16 | float16."""
    threads: int | None = None
    """torch CPU threads (None = torch's default; 1 is fastest for tiny models on a shared CPU)."""
    decode_png: bool = True
    """Store the decoded image (``png``) beside the ids."""
    prefix: str = "traj"
    """Shard name prefix (``<prefix>-NNNNNN.tar``)."""
    limit: int | None = None
    """Use only the first N prompts (smoke runs)."""


def load_records(paths: list[str], limit: int | None) -> list[PromptRecord]:
    """All prompts of all files, in order; a prompt id repeated across files is an error."""
    records, origin = [], {}
    for path in paths:
        for record in read_prompts(path):
            if record.id in origin:
                raise ValueError(f"prompt id '{record.id}' appears in both '{origin[record.id]}' and '{path}'")
            origin[record.id] = path
            records.append(record)
    return records[:limit] if limit is not None else records


def manifest(args: GenerateSettings, records: list[PromptRecord]) -> dict:
    """The settings that determine every shard's content."""
    digest = hashlib.sha256(json.dumps([[r.id, r.prompt] for r in records]).encode()).hexdigest()
    return {"prompts_sha256": digest, "num_prompts": len(records), "samples_per_prompt": args.samples_per_prompt,
            "prompts_per_shard": args.prompts_per_shard, "seed": args.seed, "sampling": args.sampling.as_dict(),
            "model_id": args.model_id or args.model, "decode_png": args.decode_png}


class Tally:
    """Counts over the generated rows, for the progress bar and the final summary."""

    def __init__(self) -> None:
        self.rows = self.no_image = self.switched = self.reasoning_tokens = 0

    def add(self, results: list[SampleResult]) -> None:
        self.rows += len(results)
        self.no_image += sum(not r.has_image for r in results)
        self.switched += sum(r.switched for r in results)
        self.reasoning_tokens += sum(len(r.reasoning_ids) for r in results)

    def summary(self, seconds: float) -> str:
        n = max(self.rows, 1)
        return (f"generated {self.rows} trajectories in {seconds:.1f} s: no image {self.no_image} "
                f"({self.no_image / n:.1%}), switch rate {self.switched / n:.1%}, "
                f"mean reasoning length {self.reasoning_tokens / n:.1f} tokens")


def generate(args: GenerateSettings) -> Path:
    """Self-generate K trajectories per prompt into shards.

    Resumable (finished shards are kept); returns the shard folder."""
    if args.dtype not in DTYPES:
        raise ValueError(f"dtype '{args.dtype}' is not one of {sorted(DTYPES)}")
    if args.prompts_per_shard < 1:
        raise ValueError("prompts_per_shard must be >= 1")
    records = load_records(args.prompts, args.limit)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_settings(out_dir / f"{args.prefix}-run.json", manifest(args, records))
    groups = [records[i : i + args.prompts_per_shard] for i in range(0, len(records), args.prompts_per_shard)]
    done = finished_shards(out_dir, args.prefix)
    todo = [i for i in range(len(groups)) if shard_name(args.prefix, i) not in done]
    print(f"{len(groups)} shards ({len(groups) - len(todo)} already done), {len(records)} prompts x "
          f"{args.samples_per_prompt} samples, mode {args.sampling.mode}")
    tally = Tally()
    if not todo:
        return out_dir
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_unified(args.model, device=args.device, dtype=DTYPES[args.dtype])
    start = time.perf_counter()
    total = sum(len(groups[i]) for i in todo) * args.samples_per_prompt
    with tqdm(total=total, unit="img", desc="generate", dynamic_ncols=True) as bar:
        def on_batch(results: list[SampleResult]) -> None:
            tally.add(results)
            bar.update(len(results))
            bar.set_postfix(no_image=tally.no_image, switched=tally.switched)

        for i in todo:
            trajectories: list[Trajectory] = generate_trajectories(
                model, groups[i], args.samples_per_prompt, args.sampling, args.seed, args.model_id or args.model,
                decode_png=args.decode_png, batch_size=args.batch_size, on_batch=on_batch)
            write_shard(out_dir, args.prefix, i, trajectories)
    print(tally.summary(time.perf_counter() - start))
    return out_dir
