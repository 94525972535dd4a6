"""Scoring shards: input trajectory shards -> new shards with ``rewards`` filled, plus summary statistics.

One output shard per input shard (same number); the score stage (``unigen.pipeline.score``)
writes them atomically, records them in the output index and skips them on a restart. Input
shards are never modified. They are read with the strict reader ``fit`` uses
(``unigen.data.reader``): under ``skip`` every input sample missing from an output shard is
counted per reason (``read_input``), under ``raise`` the stage stops naming shard and key.
``summary`` gives every reward's statistics over the output shards.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from unigen.data.reader import bad, read_shard
from unigen.data.shards import finished_shards
from unigen.data.trajectory import Trajectory, keyed_by_turn
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


def summary(rewards: Iterable[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """"<modality>/<name>" -> count, missing, mean, std, min, max over trajectories' ``rewards``."""
    values: dict[str, list[float]] = {}
    total = 0
    for filled in rewards:
        total += 1
        for modality, named in filled.items():
            for name, value in named.items():
                values.setdefault(f"{modality}/{name}", []).append(value)
    stats = {}
    for key, vals in sorted(values.items()):
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
        stats[key] = {"count": len(vals), "missing": total - len(vals), "mean": mean, "std": std,
                      "min": min(vals), "max": max(vals)}
    return stats


def expected_count(shard: Path) -> int | None:
    """The sample count the input's own index records for ``shard`` (None: no index beside it)."""
    return finished_shards(shard.parent, SHARD_NUMBER.sub("", shard.name)).get(shard.name)


def read_input(shard: Path, policy: str) -> tuple[list[Trajectory], Counter[str]]:
    """The good trajectories of an input shard and the per-reason count of every sample dropped.

    When the input's index records the shard's sample count, a cut short shard counts every
    sample lost after the cut under ``truncated_tar`` (not just the partial one the reader sees).
    """
    skipped: Counter[str] = Counter()
    trajectories = list(read_shard(shard, policy, skipped))
    expected = expected_count(shard)
    missing = expected - len(trajectories) - sum(skipped.values()) if expected is not None else 0
    if missing > 0:
        bad(policy, str(shard), None, "truncated_tar", f"{missing} of the {expected} samples its index records are missing")
        skipped["truncated_tar"] += missing
    return trajectories, skipped


def report_skipped(skipped: dict[str, dict[str, int]], names: set[str]) -> None:
    """Print the input samples dropped for each output shard of this run, and their total per reason."""
    total: Counter[str] = Counter()
    for name, reasons in sorted(skipped.items()):
        if name in names:
            total.update(reasons)
            print(f"{name}: dropped {sum(reasons.values())} input samples ({_reasons(reasons)})")
    if total:
        print(f"dropped {sum(total.values())} input samples in all ({_reasons(total)}); "
              "recorded under 'skipped' in the output index")


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))


def score_shard(shard: Path, rewards, combine, model, batch_size: int, keep_png: bool, policy: str
                ) -> tuple[list[Trajectory], Counter[str]]:
    """The scored trajectories of one input shard, and the per-reason counts of the samples dropped.

    A multi-image trajectory is scored once per image turn (:meth:`Trajectory.image_turns`); the
    values are stored as ``<name>@<k>`` and the final image's also as ``<name>``."""
    trajectories, skipped = read_input(shard, policy)
    scored = []
    for start in tqdm(range(0, len(trajectories), batch_size), desc=shard.name, leave=False, unit="batch"):
        batch = trajectories[start:start + batch_size]
        views = [t.image_turns() for t in batch]
        flat = [v for turns in views for v in turns]
        if model is not None:
            from unigen.rewards.images import with_decoded_png

            flat = with_decoded_png(flat, model)
        filled, seen = iter(score_batch(flat, rewards, combine)), iter(flat)
        for original, turns in zip(batch, views):
            per_turn, pngs = [next(filled) for _ in turns], [next(seen).png for _ in turns]
            scored.append(with_scores(original, per_turn, pngs if keep_png else None))
    return scored, skipped


def with_scores(traj: Trajectory, per_turn: list[dict[str, dict[str, float]]], pngs: list[bytes | None] | None
                ) -> Trajectory:
    """``traj`` with the rewards of each of its image turns (and, given ``pngs``, their decoded images)."""
    if not traj.turns:
        return dataclasses.replace(traj, rewards=per_turn[0], png=traj.png if pngs is None else pngs[0])
    rewards = {mod: dict(named) for mod, named in traj.rewards.items()}
    for modality, named in keyed_by_turn(per_turn).items():
        rewards.setdefault(modality, {}).update(named)
    if pngs is None:
        return dataclasses.replace(traj, rewards=rewards)
    later = iter(pngs[1:])
    turns = [dataclasses.replace(t, png=next(later)) if t.has_image else t for t in traj.turns]
    return dataclasses.replace(traj, rewards=rewards, png=pngs[0], turns=turns)
