"""Streaming stages for trajectory shards after the reader: examples, batches, worker transport.

The stages are plain generator functions for ``webdataset.DataPipeline``; the first one is
:func:`unigen.data.reader.shard_samples` (the strict reader every consumer shares). A bad sample
(or a cut short shard) either raises :class:`~unigen.data.reader.BadShardData` naming shard, key
and reason, or becomes a skip marker ``{"__skip__": reason}`` that flows down the stream; the
batching stage counts the markers into the ``skipped`` field ({reason: count}) of the next batch
it yields, so the counts leave the DataLoader worker processes with the data and the main process
can log them.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from webdataset.utils import pytorch_worker_info

from unigen.data.batch import Batch
from unigen.data.reader import SKIP, bad, parse
from unigen.data.sequence import BadSample, Example, build_example
from unigen.data.trajectory import Trajectory
from unigen.models.unified import TokenSpec

log = logging.getLogger(__name__)


def prompt_groups(samples: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]] | dict]:
    """Stage: consecutive samples of one prompt (keys ``<prompt_id>_<k>``, as shards are written
    prompt by prompt) -> one list, so the shuffle moves and a batch holds a prompt's K samples
    together and per-prompt reward statistics see the whole group; skip markers pass through."""
    group: list[dict[str, Any]] = []
    for sample in samples:
        if SKIP in sample:
            yield sample
            continue
        if group and sample["__key__"].rsplit("_", 1)[0] != group[0]["__key__"].rsplit("_", 1)[0]:
            yield group
            group = []
        group.append(sample)
    if group:
        yield group


def worker_seed(seed: int) -> int:
    """``seed`` made distinct per rank and DataLoader worker (unchanged in rank 0's first worker and
    in a single process), so that workers do not repeat each other's random decisions."""
    rank, _, worker, _ = pytorch_worker_info()
    return seed + 1_000_003 * (rank * 1024 + worker)


def to_examples(items: Iterable[dict[str, Any] | list[dict[str, Any]]], spec: TokenSpec, mode: str, policy: str,
                condition_dropout: float = 0.0, seed: int = 0) -> Iterator[Example | list[Example] | dict]:
    """Stage: raw samples (or prompt groups of them) -> training examples (or lists of them); skip
    markers pass through. Each sample with an image has its condition dropped with probability
    ``condition_dropout`` (seeded by :func:`worker_seed`: each rank and worker draws its own)."""
    rng = random.Random(worker_seed(seed))

    def convert(sample: dict[str, Any]) -> Example | dict:
        traj = parse(sample, policy)
        if not isinstance(traj, Trajectory):
            return traj
        try:
            drop = condition_dropout > 0 and rng.random() < condition_dropout
            return build_example(traj, spec, mode, drop_condition=drop)
        except BadSample as err:
            return bad(policy, sample["__url__"], sample["__key__"], err.reason, str(err))

    for item in items:
        if not isinstance(item, list):
            yield convert(item)
            continue
        converted = [convert(sample) for sample in item]
        yield from (c for c in converted if isinstance(c, dict))
        yield [c for c in converted if isinstance(c, Example)]


def batches(items: Iterable[Example | list[Example] | dict], size: int,
            make_batch: Callable[[list[Example]], Batch]) -> Iterator[Batch]:
    """Stage: examples -> batches of ``size`` (the last one partial), each with its ``skipped`` counts.

    A list of examples (a prompt group) is never split: a batch ends before a group that would
    overflow it (a group larger than ``size`` is a batch of its own). One batch is held back so
    skips met after the last full batch still ride on a batch.
    """
    skipped: Counter[str] = Counter()
    pending: list[Example] = []
    held: Batch | None = None

    def emit(batch: Batch) -> Batch:
        batch.skipped = dict(skipped)
        skipped.clear()
        return batch

    def close() -> Iterator[Batch]:
        """Batch the pending examples and hold that batch back; yield the one held before."""
        nonlocal held, pending
        if held is not None:
            yield emit(held)
        held, pending = make_batch(pending), []

    for item in items:
        if isinstance(item, dict):
            skipped[item[SKIP]] += 1
            continue
        group = item if isinstance(item, list) else [item]
        if pending and len(pending) + len(group) > size:
            yield from close()
        pending.extend(group)
        if len(pending) >= size:
            yield from close()
    if pending:
        yield from close()
    if held is not None:
        yield emit(held)
    elif skipped:
        log.warning("a data stream produced no batch; it skipped %s", dict(skipped))


def to_numpy(batch: Batch) -> Batch:
    """Tensors -> numpy arrays (same memory) for the trip out of a DataLoader worker.

    Numpy arrays travel pickled by value; every torch tensor would take its own shared-memory
    segment and file descriptor, which made worker transport ~3x slower than building the batch.
    """
    return batch.apply(lambda v: v.numpy() if isinstance(v, torch.Tensor) else v)


def to_tensors(batch: Batch) -> Batch:
    """The inverse of :func:`to_numpy`, in the main process (no copy)."""
    return batch.apply(lambda v: torch.from_numpy(v) if isinstance(v, np.ndarray) else v)


class FromWorkers:
    """Iterate a DataLoader whose workers send :func:`to_numpy` batches, yielding tensor batches."""

    def __init__(self, loader: Iterable[Batch]):
        self.loader = loader

    def __iter__(self) -> Iterator[Batch]:
        return map(to_tensors, self.loader)
