"""Resumable shard writing: a planned writer (shard ``i`` = ``make(groups[i])``) and the
shard-to-shard map of the stages that turn shards into shards (score, reflect).

A restart keeps the shards finished earlier, each verified first (:func:`check_finished`, as
``generate`` does: a finished shard that went missing or was damaged since is an error, never
built on), and writes the others atomically (:func:`write_shard`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from unigen.data.reader import check_finished, read_input
from unigen.data.shards import parse_shard_name, remove_partial_shards, shard_name, write_shard
from unigen.data.trajectory import Trajectory

Transform = Callable[[list[Trajectory]], tuple[list[Trajectory], dict[str, int]]]
"""An input shard's good trajectories -> the output shard's trajectories and the stage's own
{name: count} for it (empty: none recorded)."""


def write_planned_shards(out_dir: str | Path, prefix: str, groups: Sequence[Any],
                         make: Callable[[Any], list[Trajectory]], progress: bool = True) -> list[Path]:
    """Resumable writer: shard ``i`` holds ``make(groups[i])``; finished shards are kept.

    ``groups`` must be the same deterministic plan on every restart (e.g. prompts split into fixed
    chunks), so a restarted job rewrites exactly the missing shards and never duplicates a key.
    Leftovers of a killed writer are removed first. Returns the paths of every shard of the plan.
    """
    remove_partial_shards(out_dir, prefix)
    done = check_finished(out_dir, prefix)
    todo = [i for i in range(len(groups)) if shard_name(prefix, i) not in done]
    for i in tqdm(todo, desc=f"shards {prefix}", unit="shard", disable=not progress):
        write_shard(out_dir, prefix, i, make(groups[i]))
    return [Path(out_dir) / shard_name(prefix, i) for i in range(len(groups))]


def map_shards(inputs: Sequence[str | Path], out_dir: str | Path, prefix: str, transform: Transform,
               policy: str, desc: str) -> list[Path]:
    """Output shard ``<prefix>-<n>.tar`` of every input shard ``<any prefix>-<n>.tar``; returns the
    output paths in input order. A missing output is made from the input's good trajectories, read
    under ``policy`` (:func:`read_input`), by ``transform``, and written with the input's skipped
    counts and the stage's own counts in the same index write. ``desc`` labels the progress bar."""
    numbers = [parse_shard_name(path)[1] for path in inputs]
    done = check_finished(out_dir, prefix)
    for path, number in tqdm(list(zip(inputs, numbers)), desc=desc, unit="shard"):
        if shard_name(prefix, number) not in done:
            samples, skipped = read_input(path, policy)
            built, counts = transform(samples)
            write_shard(out_dir, prefix, number, built, skipped, counts)
    return [Path(out_dir) / shard_name(prefix, number) for number in numbers]
