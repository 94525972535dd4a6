"""A synthetic, learnable trajectory set for smoke tests, benchmarks and ``configs/tiny.yaml``.

Prompts name a count, a color and a shape; the reasoning restates them and the "image" is a
flat pattern determined by the prompt (codebook ids, or for a latent model the same pattern as
latent values in [-1, 1] on every channel), so both loss heads can fall within a few dozen steps.
``python run.py synthesize --out data/synthetic --model janus-tiny`` writes it as shards.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from jsonargparse import ArgumentParser

from unigen.data.shardmap import write_planned_shards
from unigen.data.trajectory import Trajectory
from unigen.models.image import ImageSpec

COLORS = ("red", "green", "blue", "yellow")
SHAPES = ("circle", "square", "triangle")


def synthetic_trajectory(i: int, rng: random.Random, num_image_tokens: int, codebook_size: int | None,
                         channels: int = 0) -> Trajectory:
    """Trajectory ``syn<i>`` whose image is a function of (count, color, shape): ids of a
    ``codebook_size`` codebook, or (``channels`` > 0) (N, channels) float32 latents."""
    count, color, shape = rng.randint(1, 4), rng.choice(COLORS), rng.choice(SHAPES)
    prompt = f"{count} {color} {shape}{'s' if count > 1 else ''}"
    # a flat "scene": background id 0, the object's id on every (5 - count)-th pair of patches
    objects = len(COLORS) * len(SHAPES)
    object_id = 1 + (COLORS.index(color) * len(SHAPES) + SHAPES.index(shape)) % ((codebook_size or objects + 1) - 1)
    ids = np.where((np.arange(num_image_tokens) // 2) % (5 - count) == 0, object_id, 0)
    image = np.repeat((ids / objects * 2 - 1)[:, None], channels, 1).astype(np.float32) if channels else ids.astype(np.int64)
    return Trajectory(f"syn{i}", 0, prompt, f"plan: {count} x {color} {shape}", image,
                      category="counting", model="synthetic",
                      rewards={"image": {"synthetic": 1.0}, "text": {"synthetic": 1.0}})


def synthetic_trajectories(n: int, num_image_tokens: int, codebook_size: int | None, seed: int, start: int = 0,
                           channels: int = 0) -> list[Trajectory]:
    """Trajectories ``syn<start>`` .. ``syn<start+n-1>``; the same (start, seed) always gives the same ones."""
    rng = random.Random(f"{seed}-{start}")
    return [synthetic_trajectory(start + i, rng, num_image_tokens, codebook_size, channels) for i in range(n)]


def image_geometry(image: ImageSpec) -> dict:
    """The keyword arguments of :func:`synthetic_trajectories` for a model's image spec."""
    channels = image.shape[1] if image.kind == "latents" else 0
    return {"num_image_tokens": image.num_tokens, "codebook_size": image.codebook_size, "channels": channels}


def write_synthetic_shards(out: str | Path, num_image_tokens: int, codebook_size: int | None, samples: int,
                           shard_size: int, seed: int = 0, prefix: str = "train", channels: int = 0) -> list[Path]:
    """Write ``samples`` synthetic trajectories as ``<out>/<prefix>-%06d.tar`` (resumable, atomic)."""
    starts = list(range(0, samples, shard_size))
    return write_planned_shards(
        out, prefix, starts,
        lambda s: synthetic_trajectories(min(shard_size, samples - s), num_image_tokens, codebook_size, seed, s,
                                         channels),
    )


def main(argv: list[str]) -> None:
    """Write a synthetic train (and val) shard set for a model's geometry."""
    from unigen.models.loading import load_spec

    parser = ArgumentParser(prog="run.py synthesize", parser_mode="omegaconf", description=main.__doc__)
    parser.add_argument("--config", action="config")
    parser.add_argument("--out", type=str, required=True, help="output folder")
    parser.add_argument("--model", type=str, default="janus-tiny", help="model source (preset, YAML, folder)")
    parser.add_argument("--train_samples", type=int, default=1024, help="training trajectories")
    parser.add_argument("--val_samples", type=int, default=64, help="validation trajectories (0: none)")
    parser.add_argument("--shard_size", type=int, default=128, help="trajectories per shard")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic prompts")
    args = parser.parse_args(argv)
    spec = load_spec(args.model)
    geometry = image_geometry(spec.image)
    train = write_synthetic_shards(args.out, samples=args.train_samples, shard_size=args.shard_size, seed=args.seed,
                                   prefix="train", **geometry)
    val = write_synthetic_shards(args.out, samples=args.val_samples, shard_size=args.shard_size, seed=args.seed + 1,
                                 prefix="val", **geometry)
    print(f"wrote {len(train)} train and {len(val)} val shards to {args.out}")
