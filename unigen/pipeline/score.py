"""The score stage: trajectory shards -> new shards with ``rewards`` filled, plus reward statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from unigen.data.reader import check_policy, read_shard
from unigen.data.shardmap import map_shards
from unigen.data.shards import expand_shards, read_index
from unigen.data.trajectory import Trajectory
from unigen.files import atomic_write_text
from unigen.pipeline.stage import as_dict, check_settings
from unigen.registry import Spec
from unigen.scale.ranks import barrier, join
from unigen.rewards import REWARDS
from unigen.rewards.scoring import report_skipped, score_trajectories, summary


@dataclass
class ScoreSettings:
    """Which shards to score with which rewards."""

    rewards: dict[str, Spec]
    """Reward name -> reward (short name, import path or ``{class_path, init_args}``); values are
    stored as ``rewards[<modality>][<name>]`` (a ``both`` reward under ``image`` and ``text``)."""
    input: str = "shards"
    """Folder of input ``*.tar`` shards, or a glob / brace pattern (shards named ``<prefix>-<n>.tar``)."""
    output: str = "scored"
    """Output folder: shards ``<prefix>-<n>.tar`` (input shard ``*-<n>.tar`` scored), the index,
    ``<prefix>-rewards.json``."""
    combine: dict[str, dict[str, float]] = field(default_factory=dict)
    """"<modality>/<name>" -> {"<modality>/<reward>": weight}: extra rewards stored as the weighted
    mean of the named rewards present (``unigen.rewards.contract.combine_values``)."""
    prefix: str = "scored"
    """Output shard prefix."""
    decoder: str | None = None
    """Model source (preset, folder, ``.ckpt``) whose VQ decoder turns ``image_tokens`` into the
    ``png`` image rewards read; None: rewards see only stored ``png`` fields."""
    device: str = "cpu"
    """Device of the decoder."""
    batch_size: int = 16
    """Trajectories per reward call."""
    keep_png: bool = False
    """Store decoded images in the output shards (default: keep only the input's ``png``)."""
    on_bad_sample: str = "skip"
    """``skip``: drop a bad input sample, count it per reason, print the counts and record them under
    ``skipped`` in the output index | ``raise``: stop, naming shard, key and reason."""


def rewards_path(out_dir: str | Path, prefix: str) -> Path:
    """The reward statistics file of a score output folder."""
    return Path(out_dir) / f"{prefix}-rewards.json"


def score(settings: ScoreSettings) -> Path:
    """Score trajectory shards with rewards into new shards.

    Resumable (finished shards are verified and kept); returns the output folder (the reward
    statistics: :func:`rewards_path`). As N processes, rank r scores the input shards i with
    i % N == r (:func:`unigen.data.shardmap.map_shards`) and rank 0 writes the statistics."""
    s = settings
    check_policy(s.on_bad_sample)
    ranks = join()
    shards = [Path(p) for p in expand_shards(s.input, "input", numbered=True)]
    out_dir = Path(s.output)
    if any(p.resolve().parent == out_dir.resolve() and p.name.startswith(f"{s.prefix}-") for p in shards):
        raise ValueError(f"output '{s.output}' with prefix '{s.prefix}' would overwrite the input shards")
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded = {k: v for k, v in as_dict(s).items() if k not in ("output", "device", "batch_size", "on_bad_sample")}
    check_settings(out_dir / f"{s.prefix}-settings.json", recorded)
    rewards = {name: REWARDS.build(spec) for name, spec in s.rewards.items()}
    model = None
    if s.decoder is not None:
        from unigen.checkpoints import load_unified  # here: only scoring with a decoder needs a model

        model = load_unified(s.decoder, device=s.device, option="decoder")

    def scored(trajectories: list[Trajectory]) -> tuple[list[Trajectory], dict[str, int]]:
        return score_trajectories(trajectories, rewards, s.combine, model, s.batch_size, s.keep_png), {}
    outputs = map_shards(shards, out_dir, s.prefix, scored, s.on_bad_sample, "score")
    if ranks.is_zero:  # the statistics over every rank's shards
        report_skipped(read_index(out_dir, s.prefix)["skipped"], {p.name for p in outputs})
        stats = summary(traj.rewards for path in outputs for traj in read_shard(path))
        atomic_write_text(rewards_path(out_dir, s.prefix), json.dumps(stats, indent=1))
        for key, v in stats.items():
            print(f"{key:30s} n={v['count']:6d} missing={v['missing']:5d} mean={v['mean']:.4f} std={v['std']:.4f} "
                  f"min={v['min']:.4f} max={v['max']:.4f}")
    barrier()
    return out_dir
