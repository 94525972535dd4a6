"""ShapesWorld pretraining data: (prompt, plan, image) trajectories rendered into shards.

Each trajectory is a training-split prompt, its plan as the reasoning text, the rendered scene as
PNG and its VQ ids from the world model's fitted tokenizer. Categories are drawn by weights, by
default with ``counting`` and ``position`` rare, so a base trained on it has real weaknesses.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from unigen.data.prompts import PromptRecord
from unigen.data.shards import write_planned_shards
from unigen.data.trajectory import Trajectory
from unigen.models.unified import UnifiedModel
from unigen.models.loading import load_model
from unigen.worlds.shapes.grammar import sample_prompts
from unigen.worlds.shapes.plan import format_plan, make_plan
from unigen.files import png_bytes
from unigen.worlds.shapes.render import render
from unigen.worlds.shapes.vq import DEFAULT_VQ_WEIGHTS, load_vq, to_pixels

PRETRAIN_WEIGHTS = {"single_object": 0.2, "two_object": 1.0, "colors": 1.0, "color_attr": 1.0, "counting": 0.02,
                    "position": 0.02}
"""Category mix of the base's pretraining set (split ``pretrain``): counting and position deliberately
rare. ``single_object``'s six contents are all held out, so the base sees them here as a real base has
seen single-object captions (without them it writes multi-item plans for "a photo of a circle"); the
loop never trains on a benchmark prompt."""
SOURCE = "shapes-render"


def world_model(source: str = "shapes-janus", vq_weights: str | None = str(DEFAULT_VQ_WEIGHTS)) -> UnifiedModel:
    """The world's model: ``source`` (preset / folder) with fitted VQ weights loaded if given."""
    model = load_model(source)
    if vq_weights:
        load_vq(model.vq, vq_weights)
    return model.eval()


def render_trajectories(records: list[PromptRecord], model: UnifiedModel, seed: int) -> list[Trajectory]:
    """One rendered trajectory per record (plan as reasoning, PNG, VQ ids), seeded."""
    rng = random.Random(seed)
    plans = [make_plan(r.metadata, rng) for r in records]
    images = np.stack([render(p, model.spec.image_size, rng) for p in plans])
    with torch.no_grad():
        ids = model.encode_images(to_pixels(images)).cpu().numpy().astype(np.int64)
    return [
        Trajectory(prompt_id=r.id, sample_idx=0, prompt=r.prompt, reasoning=format_plan(plan),
                   image_tokens=tokens, category=r.category, metadata=r.metadata, mode="explicit",
                   generation={"source": SOURCE, "seed": seed}, model=SOURCE, png=png_bytes(image))
        for r, plan, image, tokens in zip(records, plans, images, ids)
    ]


def write_world_shards(out: str | Path, prefix: str, model: UnifiedModel, samples: int, shard_size: int,
                       seed: int, weights: dict[str, float] | None = None, progress: bool = True) -> list[Path]:
    """Resumable: ``samples`` rendered trajectories in shards of ``shard_size`` (same plan every run)."""
    records = sample_prompts(samples, seed, weights, split="pretrain", id_prefix=f"shapes-s{seed}")
    chunks = [(i, records[i: i + shard_size]) for i in range(0, len(records), shard_size)]
    return write_planned_shards(out, prefix, chunks,
                                lambda chunk: render_trajectories(chunk[1], model, seed * 100_003 + chunk[0]),
                                progress=progress)
