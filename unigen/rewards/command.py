"""``run.py score``: input trajectory shards -> new shards with ``rewards`` filled, plus summary statistics.

One output shard per input shard (same number), written atomically and recorded in the output
index; a restarted run skips shards already listed there. Input shards are never modified. They
are read with the strict shard reader ``fit`` uses (``unigen.data.reader``): under
``on_bad_sample: skip`` every input sample missing from an output shard is counted per reason,
printed and recorded in the output index (``skipped``); under ``raise`` the run stops naming shard
and key. At the end, statistics of every reward over all output shards are printed and written
atomically as JSON.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import re
from collections import Counter
from pathlib import Path

from jsonargparse import ArgumentParser
from tqdm import tqdm

from unigen.data.reader import bad, check_policy, read_shard
from unigen.data.shards import finished_shards, read_index, shard_name, write_shard
from unigen.data.trajectory import Trajectory
from unigen.files import atomic_write_bytes
from unigen.rewards.base import Reward, RewardSpec, checked_values, combine_values, target_modalities

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


def score(
    input: str,
    output: str,
    rewards: dict[str, RewardSpec],
    combine: dict[str, dict[str, float]] | None = None,
    prefix: str = "scored",
    decoder: str | None = None,
    device: str = "cpu",
    batch_size: int = 16,
    keep_png: bool = False,
    on_bad_sample: str = "skip",
) -> dict[str, dict[str, float]]:
    """Score trajectory shards.

    Args:
        input: folder of input ``*.tar`` shards, or a glob pattern.
        output: output folder (new shards ``<prefix>-<n>.tar``, the index, ``<prefix>-rewards.json``).
        rewards: reward name -> reward (``class_path`` + ``init_args``); values are stored as
            ``rewards[<modality>][<name>]`` (a ``both`` reward under ``image`` and ``text``).
        combine: "<modality>/<name>" -> {"<modality>/<reward>": weight}: extra rewards stored as the
            weighted mean of the named rewards present (see ``unigen.rewards.base.combine_values``).
        prefix: output shard prefix.
        decoder: model source (preset, folder, ``.ckpt``) whose VQ decoder turns ``image_tokens``
            into the ``png`` image rewards read; None: rewards see only stored ``png`` fields.
        device: device of the decoder.
        batch_size: trajectories per reward call.
        keep_png: store decoded images in the output shards (default: keep only the input's ``png``).
        on_bad_sample: ``skip`` (drop a bad input sample; count, print and record it in the output
            index per reason) | ``raise`` (stop, naming shard, key and reason).
    """
    check_policy(on_bad_sample)
    combine = combine or {}
    shards = input_shards(input)
    out_dir = Path(output)
    if any(s.resolve().parent == out_dir.resolve() and s.name.startswith(f"{prefix}-") for s in shards):
        raise ValueError(f"output '{output}' with prefix '{prefix}' would overwrite the input shards")
    done = finished_shards(out_dir, prefix)
    model = None
    if decoder is not None:
        from unigen.checkpoints import load_unified  # here: only scoring with a decoder needs a model

        model = load_unified(decoder, device=device, option="decoder")
    outputs = []
    with tqdm(total=len(shards), desc="score", unit="shard") as bar:
        for shard in shards:
            number = int(SHARD_NUMBER.search(shard.name).group(1))
            outputs.append(out_dir / shard_name(prefix, number))
            if outputs[-1].name not in done:
                scored, skipped = _score_shard(shard, rewards, combine, model, batch_size, keep_png, on_bad_sample)
                write_shard(out_dir, prefix, number, scored, skipped)
            bar.update(1)
    report_skipped(read_index(out_dir, prefix)["skipped"], {s.name for s in outputs})
    stats = summary(outputs)
    atomic_write_bytes(out_dir / f"{prefix}-rewards.json", json.dumps(stats, indent=1).encode())
    for key, s in stats.items():
        print(f"{key:30s} n={s['count']:6d} missing={s['missing']:5d} mean={s['mean']:.4f} std={s['std']:.4f} "
              f"min={s['min']:.4f} max={s['max']:.4f}")
    return stats


def expected_count(shard: Path) -> int | None:
    """The sample count the input's own index records for ``shard`` (None: no index beside it)."""
    prefix = SHARD_NUMBER.sub("", shard.name)
    return finished_shards(shard.parent, prefix).get(shard.name)


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


def _score_shard(shard: Path, rewards, combine, model, batch_size: int, keep_png: bool, policy: str
                 ) -> tuple[list[Trajectory], Counter[str]]:
    trajectories, skipped = read_input(shard, policy)
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
    return scored, skipped


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="run.py score", parser_mode="omegaconf",
                            description="Score trajectory shards with pluggable rewards.")
    parser.add_argument("--config", action="config", help="YAML config (may repeat)")
    parser.add_function_arguments(score)
    return parser


def main(argv: list[str]) -> None:
    parser = build_parser()
    cfg = parser.instantiate(parser.parse_args(argv))
    cfg.pop("config", None)
    score(**{k: v for k, v in vars(cfg).items() if k != "__path__"})
