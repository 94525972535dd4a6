"""The score stage: trajectory shards -> new shards with ``rewards`` filled, plus reward statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from tqdm import tqdm

from unigen.data.reader import check_policy, read_shard
from unigen.data.shards import finished_shards, read_index, shard_name, write_shard
from unigen.files import atomic_write_text
from unigen.pipeline.stage import as_dict, check_settings
from unigen.registry import Spec
from unigen.rewards import REWARDS
from unigen.rewards.scoring import SHARD_NUMBER, input_shards, report_skipped, score_shard, summary


@dataclass
class ScoreSettings:
    """Which shards to score with which rewards."""

    rewards: dict[str, Spec]
    """Reward name -> reward (short name, import path or ``{class_path, init_args}``); values are
    stored as ``rewards[<modality>][<name>]`` (a ``both`` reward under ``image`` and ``text``)."""
    input: str = "shards"
    """Folder of input ``*.tar`` shards, or a glob pattern."""
    output: str = "scored"
    """Output folder: shards ``<prefix>-<n>.tar``, the index, ``<prefix>-rewards.json``."""
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


def score(settings: ScoreSettings) -> Path:
    """Score trajectory shards with rewards into new shards.

    Resumable (finished shards are kept); returns ``<output>/<prefix>-rewards.json``."""
    s = settings
    check_policy(s.on_bad_sample)
    shards = input_shards(s.input)
    out_dir = Path(s.output)
    if any(p.resolve().parent == out_dir.resolve() and p.name.startswith(f"{s.prefix}-") for p in shards):
        raise ValueError(f"output '{s.output}' with prefix '{s.prefix}' would overwrite the input shards")
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded = {k: v for k, v in as_dict(s).items() if k not in ("output", "device", "batch_size", "on_bad_sample")}
    check_settings(out_dir / f"{s.prefix}-settings.json", recorded)
    rewards = {name: REWARDS.build(spec) for name, spec in s.rewards.items()}
    done = finished_shards(out_dir, s.prefix)
    model = None
    if s.decoder is not None:
        from unigen.checkpoints import load_unified  # here: only scoring with a decoder needs a model

        model = load_unified(s.decoder, device=s.device, option="decoder")
    outputs, rewards_per_shard = [], []
    with tqdm(total=len(shards), desc="score", unit="shard") as bar:
        for shard in shards:
            number = int(SHARD_NUMBER.search(shard.name).group(1))
            outputs.append(out_dir / shard_name(s.prefix, number))
            if outputs[-1].name not in done:
                scored, skipped = score_shard(shard, rewards, s.combine, model, s.batch_size, s.keep_png,
                                              s.on_bad_sample)
                write_shard(out_dir, s.prefix, number, scored, skipped)
            else:  # scored by an earlier run
                scored = read_shard(outputs[-1])
            rewards_per_shard.append([traj.rewards for traj in scored])
            bar.update(1)
    report_skipped(read_index(out_dir, s.prefix)["skipped"], {p.name for p in outputs})
    stats = summary(chain.from_iterable(rewards_per_shard))
    path = out_dir / f"{s.prefix}-rewards.json"
    atomic_write_text(path, json.dumps(stats, indent=1))
    for key, v in stats.items():
        print(f"{key:30s} n={v['count']:6d} missing={v['missing']:5d} mean={v['mean']:.4f} std={v['std']:.4f} "
              f"min={v['min']:.4f} max={v['max']:.4f}")
    return path
