"""Scoring shards: input trajectory shards -> new shards with ``rewards`` filled, plus summary statistics.

One output shard per input shard (same number); the score stage (``unigen.pipeline.score``)
writes them atomically, records them in the output index and skips them on a restart. Input
shards are never modified. ``summary`` gives every reward's statistics over the output shards.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import re
from pathlib import Path

from tqdm import tqdm

from unigen.data.shards import read_shard
from unigen.data.trajectory import Trajectory
from unigen.rewards.contract import Reward, checked_values, combine_values, target_modalities

SHARD_NUMBER = re.compile(r"-(\d+)\.tar$")


def input_shards(source: str) -> list[Path]:
    """A folder's ``*.tar`` shards (sorted), or the files a glob pattern matches."""
    path = Path(source)
    shards = sorted(path.glob("*.tar")) if path.is_dir() else sorted(Path(p) for p in glob.glob(source))
    if not shards:
        raise FileNotFoundError(f"no input shards (*.tar) found at '{source}'")
    for shard in shards:
        if not SHARD_NUMBER.search(shard.name):
            raise ValueError(f"input shard '{shard}' is not named <prefix>-<number>.tar")
    return shards


def score_batch(trajectories: list[Trajectory], rewards: dict[str, Reward],
                combine: dict[str, dict[str, float]]) -> list[dict[str, dict[str, float]]]:
    """Run every reward on a batch; return each trajectory's new ``rewards`` dict (inputs untouched)."""
    out = [{mod: dict(named) for mod, named in t.rewards.items()} for t in trajectories]
    for name, reward in rewards.items():
        modalities = target_modalities(reward, name)
        values = checked_values(name, trajectories, reward(trajectories))
        for filled, value in zip(out, values):
            if value is not None:
                for modality in modalities:
                    filled.setdefault(modality, {})[name] = value
    for target, weights in combine.items():
        modality, _, name = target.partition("/")
        for filled in out:
            flat = {f"{m}/{n}": v for m, named in filled.items() for n, v in named.items()}
            value = combine_values(flat, weights)
            if value is not None:
                filled.setdefault(modality, {})[name] = value
    return out


def summary(shards: list[Path]) -> dict[str, dict[str, float]]:
    """"<modality>/<name>" -> count, missing, mean, std, min, max over the given shards."""
    values: dict[str, list[float]] = {}
    total = 0
    for shard in shards:
        for traj in read_shard(shard):
            total += 1
            for modality, named in traj.rewards.items():
                for name, value in named.items():
                    values.setdefault(f"{modality}/{name}", []).append(value)
    stats = {}
    for key, vals in sorted(values.items()):
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
        stats[key] = {"count": len(vals), "missing": total - len(vals), "mean": mean, "std": std,
                      "min": min(vals), "max": max(vals)}
    return stats


def score_shard(shard: Path, rewards, combine, model, batch_size: int, keep_png: bool) -> list[Trajectory]:
    trajectories = list(read_shard(shard))
    scored = []
    for start in tqdm(range(0, len(trajectories), batch_size), desc=shard.name, leave=False, unit="batch"):
        batch = trajectories[start:start + batch_size]
        if model is not None:
            from unigen.rewards.images import with_decoded_png

            view = with_decoded_png(batch, model)
        else:
            view = batch
        for original, seen, filled in zip(batch, view, score_batch(view, rewards, combine)):
            scored.append(dataclasses.replace(original, rewards=filled, png=seen.png if keep_png else original.png))
    return scored
