"""Scoring trajectories: every reward on a batch, each image turn of a trajectory, summary statistics.

The score stage (``unigen.pipeline.score``) maps input shards to output shards with
``unigen.data.shardmap.map_shards`` (one output shard per input shard, the same number, resumable;
input shards are never modified), :func:`score_trajectories` being its transform;
:func:`summary` gives every reward's statistics over the output shards.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable

from tqdm import tqdm

from unigen.data.trajectory import Trajectory, keyed_by_turn
from unigen.rewards.contract import Reward, checked_values, combine_values, target_modalities


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


def score_trajectories(trajectories: list[Trajectory], rewards: dict[str, Reward], combine: dict[str, dict[str, float]],
                       model, batch_size: int, keep_png: bool) -> list[Trajectory]:
    """The trajectories of one shard scored in batches of ``batch_size`` (images decoded by ``model``'s
    VQ decoder where given; kept in the output with ``keep_png``).

    A multi-image trajectory is scored once per image turn (:meth:`Trajectory.image_turns`); the
    values are stored as ``<name>@<k>`` and the final image's also as ``<name>``."""
    scored = []
    for start in tqdm(range(0, len(trajectories), batch_size), desc="batches", leave=False, unit="batch"):
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
    return scored


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
