"""Streaming stages for trajectory shards: shard patterns, a checked tar reader, examples, batches.

The stages are plain generator functions for ``webdataset.DataPipeline``. A bad sample (or a cut
short shard) either raises :class:`BadShardData` naming shard, key and reason, or becomes a skip
marker ``{"__skip__": reason}`` that flows down the stream; the batching stage counts the markers
into the ``skipped`` field ({reason: count}) of the next batch it yields, so the counts leave the
DataLoader worker processes with the data and the main process can log them.

webdataset's own tar expander is not used: it reads with Python's streaming ``tarfile``, which
ends silently when a shard is cut at a member boundary; :mod:`unigen.data.tarstream` does not.
"""

from __future__ import annotations

import glob
import logging
import tarfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
import webdataset as wds

from unigen.data.batch import Batch
from unigen.data.sequence import BadSample, Example, build_example
from unigen.data.shards import from_sample
from unigen.data.tarstream import tar_members
from unigen.models.unified import TokenSpec

log = logging.getLogger(__name__)

SKIP = "__skip__"
POLICIES = ("skip", "raise")


class BadShardData(ValueError):
    """A bad sample or shard under ``on_bad_sample: raise``; the message names shard, key and reason.

    (Only the message survives a DataLoader worker, which rebuilds exceptions from it.)
    """

    def __init__(self, message: str, shard: str = "", key: str | None = None, reason: str = ""):
        super().__init__(message)
        self.shard, self.key, self.reason = shard, key, reason


def expand_shards(patterns: Iterable[str]) -> list[str]:
    """Shard paths from paths, brace patterns (``a-{000000..000009}.tar``) and globs, in order.

    Raises ``FileNotFoundError`` naming the pattern when one matches no file, ``ValueError`` when
    the list is empty.
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    if not patterns:
        raise ValueError("no shard patterns given (empty shard list)")
    out: list[str] = []
    for pattern in patterns:
        matched = [p for expanded in wds.shardlists.expand_urls(pattern) for p in sorted(glob.glob(expanded))]
        if not matched:
            raise FileNotFoundError(f"shard pattern '{pattern}' matches no file")
        out += matched
    return out


def bad(policy: str, shard: str, key: str | None, reason: str, detail: str) -> dict[str, str]:
    """Raise (policy ``raise``) or return a skip marker (policy ``skip``)."""
    if policy == "raise":
        raise BadShardData(f"shard '{shard}', key '{key}': {reason}: {detail}", shard, key, reason)
    log.debug("skipped shard %s key %s: %s: %s", shard, key, reason, detail)
    return {SKIP: reason, "__url__": shard, "__key__": key}


def _read_members(path: str) -> Iterator[dict[str, Any]]:
    """Raw samples of one shard (consecutive members sharing a key); raises ``tarfile.ReadError``
    when the shard is cut short. A repeated member marks its sample with ``__duplicate__``."""
    current: dict[str, Any] | None = None
    with open(path, "rb", buffering=1 << 20) as stream:
        for name, data in tar_members(stream):
            key, _, field = name.partition(".")
            if current is not None and key == current["__key__"] and field in current:
                yield {"__duplicate__": field, **current}
                current = None
            if current is None or key != current["__key__"]:
                if current is not None:
                    yield current
                current = {"__key__": key, "__url__": path}
            current[field] = data
    if current is not None:
        yield current


def shard_samples(shards: Iterable[dict[str, str]], policy: str) -> Iterator[dict[str, Any]]:
    """Stage: ``{"url": path}`` -> raw samples. A cut short shard keeps its whole samples before the cut
    and counts one ``truncated_tar`` skip (its last, possibly partial, sample is dropped with it)."""
    for shard in shards:
        path, key = shard["url"], None
        try:
            for sample in _read_members(path):
                key = sample["__key__"]
                if "__duplicate__" in sample:
                    yield bad(policy, path, key, "duplicate_key", f"member '{key}.{sample['__duplicate__']}' repeats")
                else:
                    yield sample
        except (tarfile.TarError, OSError, ValueError) as err:  # ValueError: garbage header
            yield bad(policy, path, key, "truncated_tar", f"{type(err).__name__}: {err}")


def to_examples(samples: Iterable[dict[str, Any]], spec: TokenSpec, mode: str, policy: str
                ) -> Iterator[Example | dict]:
    """Stage: raw samples -> training examples (skip markers pass through)."""
    for sample in samples:
        if SKIP in sample:
            yield sample
            continue
        try:
            yield build_example(from_sample(sample), spec, mode)
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
