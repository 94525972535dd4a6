"""Resumable shard writing: a planned writer (shard ``i`` = ``make(groups[i])``) and the
shard-to-shard map of the stages that turn shards into shards (score, reflect).

A restart keeps the shards finished earlier, each verified first (:func:`check_finished`, as
``generate`` does: a finished shard that went missing or was damaged since is an error, never
built on), and writes the others atomically (:func:`write_shard`).

The shard stages run as one process or as N cooperating ones (Slurm tasks, torchrun ranks:
``unigen.scale.ranks``): :func:`resume_shards` and :func:`map_shards` are collective, shard i of a
plan is made by rank i % N, and the folder is the one a single process writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from unigen.data.reader import check_finished, read_input
from unigen.data.shards import (finished_shards, index_lock_path, parse_shard_name, remove_partial_shards, shard_name,
                                write_shard)
from unigen.data.trajectory import Trajectory
from unigen.scale.ranks import barrier, current

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


def resume_shards(out_dir: str | Path, prefix: str) -> set[str]:
    """Collective start of a shard stage: rank 0 removes a killed writer's leftovers and verifies
    the finished shards (:func:`check_finished`) while the others wait; returns the finished names."""
    if current().is_zero:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        remove_partial_shards(out_dir, prefix)
        check_finished(out_dir, prefix)
    barrier()
    return set(finished_shards(out_dir, prefix))


def map_shards(inputs: Sequence[str | Path], out_dir: str | Path, prefix: str, transform: Transform,
               policy: str, desc: str) -> list[Path]:
    """Output shard ``<prefix>-<n>.tar`` of every input shard ``<any prefix>-<n>.tar``; returns the
    output paths in input order. A missing output is made from the input's good trajectories, read
    under ``policy`` (:func:`read_input`), by ``transform``, and written with the input's skipped
    counts and the stage's own counts in the same index write. ``desc`` labels the progress bar.
    Collective: the i-th input is this rank's when i % N is its rank; every rank returns after
    every output is written."""
    numbers = [parse_shard_name(path)[1] for path in inputs]
    done = resume_shards(out_dir, prefix)
    mine = current().part(list(zip(inputs, numbers)))
    for path, number in tqdm(mine, desc=desc, unit="shard"):
        if shard_name(prefix, number) not in done:
            samples, skipped = read_input(path, policy)
            built, counts = transform(samples)
            write_shard(out_dir, prefix, number, built, skipped, counts)
    finish_shards(out_dir, prefix)
    return [Path(out_dir) / shard_name(prefix, number) for number in numbers]


def finish_shards(out_dir: str | Path, prefix: str) -> None:
    """Collective end of a shard stage: every rank's shards are written; the index lock goes."""
    barrier()
    if current().is_zero:
        index_lock_path(out_dir, prefix).unlink(missing_ok=True)
