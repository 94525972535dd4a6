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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

from unigen.data.batch import Batch
from unigen.data.reader import SKIP, bad, parse
from unigen.data.sequence import BadSample, Example, build_example
from unigen.data.trajectory import Trajectory
from unigen.models.unified import TokenSpec

log = logging.getLogger(__name__)


def to_examples(samples: Iterable[dict[str, Any]], spec: TokenSpec, mode: str, policy: str
                ) -> Iterator[Example | dict]:
    """Stage: raw samples -> training examples (skip markers pass through)."""
    for sample in samples:
        traj = parse(sample, policy)
        if not isinstance(traj, Trajectory):
            yield traj
            continue
        try:
            yield build_example(traj, spec, mode)
        except BadSample as err:
            yield bad(policy, sample["__url__"], sample["__key__"], err.reason, str(err))


def batches(items: Iterable[Example | dict], size: int, make_batch: Callable[[list[Example]], Batch]
            ) -> Iterator[Batch]:
    """Stage: examples -> batches of ``size`` (the last one partial), each with its ``skipped`` counts.

    One batch is held back so skips met after the last full batch still ride on a batch.
    """
    skipped: Counter[str] = Counter()
    pending: list[Example] = []
    held: Batch | None = None

    def emit(batch: Batch) -> Batch:
        batch.skipped = dict(skipped)
        skipped.clear()
        return batch

    for item in items:
        if isinstance(item, dict):
            skipped[item[SKIP]] += 1
            continue
        pending.append(item)
        if len(pending) == size:
            if held is not None:
                yield emit(held)
            held, pending = make_batch(pending), []
    if pending:
        if held is not None:
            yield emit(held)
        held = make_batch(pending)
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
