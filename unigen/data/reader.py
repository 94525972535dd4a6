"""The one strict reader of trajectory shards, for every consumer (fit's stream, the shard-to-shard
stages' inputs, every stage's resume check).

Members are read with :mod:`unigen.data.tarstream` (a shard cut short, even at a member boundary,
is an error, never a shorter valid shard) and parsed with :func:`unigen.data.shards.from_sample`.
Every problem has a reason slug and one policy decides what happens to it:

- ``raise``: :class:`BadShardData` naming shard, key and reason (no chained traceback);
- ``skip``: the sample is dropped and counted once under its reason.

Reasons met here: ``not_a_tar`` (e.g. a gzip file named ``.tar``), ``truncated_tar`` (the shard is
cut short; its last, partial sample is dropped with the cut), ``duplicate_member`` (a field
repeats within one sample: the whole sample is dropped), ``duplicate_key`` (a key seen earlier in
the shard comes back), and the field reasons of :func:`unigen.data.shards.from_sample`.
"""

from __future__ import annotations

import logging
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from unigen.data.sequence import BadSample
from unigen.data.shards import finished_shards, from_sample, index_path, parse_shard_name
from unigen.data.tarstream import tar_members
from unigen.data.trajectory import Trajectory

log = logging.getLogger(__name__)

SKIP = "__skip__"
POLICIES = ("skip", "raise")
GZIP_MAGIC = b"\x1f\x8b"


class BadShardData(ValueError):
    """A bad sample or shard under ``on_bad_sample: raise``; the message names shard, key and reason.

    (Only the message survives a DataLoader worker, which rebuilds exceptions from it.)
    """

    def __init__(self, message: str, shard: str = "", key: str | None = None, reason: str = ""):
        super().__init__(message)
        self.shard, self.key, self.reason = shard, key, reason


def check_policy(policy: str, option: str = "on_bad_sample") -> None:
    if policy not in POLICIES:
        raise ValueError(f"{option} '{policy}' is not one of {POLICIES}")


def bad(policy: str, shard: str, key: str | None, reason: str, detail: str) -> dict[str, str]:
    """Raise (policy ``raise``) or return a skip marker ``{SKIP: reason, ...}`` (policy ``skip``)."""
    if policy == "raise":
        raise BadShardData(f"shard '{shard}', key '{key}': {reason}: {detail}", shard, key, reason) from None
    log.debug("skipped shard %s key %s: %s: %s", shard, key, reason, detail)
    return {SKIP: reason, "__url__": shard, "__key__": key}


class _CutShort(Exception):
    """The shard ended (or broke) while reading sample ``key`` (None: before the first one)."""

    def __init__(self, key: str | None, err: Exception):
        super().__init__(str(err))
        self.key, self.err = key, err


def _groups(path: str) -> Iterator[dict[str, Any]]:
    """Raw samples of one shard: consecutive members sharing a key. A sample whose field repeats
    carries ``__duplicate__`` (every member of it is absorbed, so it counts once); one whose key
    came earlier carries ``__repeated__``. Raises :class:`_CutShort` when the shard is cut short."""
    current: dict[str, Any] | None = None
    seen: set[str] = set()
    try:
        with open(path, "rb", buffering=1 << 20) as stream:
            for name, data in tar_members(stream):
                key, _, field = name.partition(".")
                if current is None or key != current["__key__"]:
                    if current is not None:
                        yield current
                    current = {"__key__": key, "__url__": path}
                    if key in seen:
                        current["__repeated__"] = True
                    seen.add(key)
                if field in current:
                    current["__duplicate__"] = field
                current[field] = data
    except (tarfile.TarError, OSError, ValueError) as err:  # ValueError: garbage header
        raise _CutShort(current["__key__"] if current else None, err) from None
    if current is not None:
        yield current


def _cut_reason(path: str, err: Exception) -> tuple[str, str]:
    """``not_a_tar`` when the shard is not a tar at all (a gzip file named .tar, garbage), else ``truncated_tar``."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        head = b""
    if head == GZIP_MAGIC:
        return "not_a_tar", "gzip-compressed data; shards are plain (uncompressed) tar files"
    if "at byte 0 " in f"{err} " or isinstance(err, (ValueError, FileNotFoundError)):
        return "not_a_tar", f"{type(err).__name__}: {err}"
    return "truncated_tar", f"{type(err).__name__}: {err}"


def shard_samples(shards: Iterable[dict[str, str]], policy: str) -> Iterator[dict[str, Any]]:
    """Stage: ``{"url": path}`` -> raw samples (or skip markers). A cut short shard keeps its whole
    samples before the cut and counts one ``truncated_tar`` (its last, possibly partial, sample)."""
    for shard in shards:
        path = shard["url"]
        try:
            for sample in _groups(path):
                key = sample["__key__"]
                if "__duplicate__" in sample:
                    yield bad(policy, path, key, "duplicate_member", f"member '{key}.{sample['__duplicate__']}' repeats")
                elif "__repeated__" in sample:
                    yield bad(policy, path, key, "duplicate_key", f"key '{key}' appears twice in the shard")
                else:
                    yield sample
        except _CutShort as cut:
            yield bad(policy, path, cut.key, *_cut_reason(path, cut.err))


def parse(sample: dict[str, Any], policy: str) -> Trajectory | dict[str, str]:
    """A raw sample as a trajectory, or the skip marker of its reason (skip markers pass through)."""
    if SKIP in sample:
        return sample
    try:
        return from_sample(sample)
    except BadSample as err:
        return bad(policy, sample["__url__"], sample["__key__"], err.reason, str(err))


def read_shard(path: str | Path, policy: str = "raise", skipped: Counter[str] | None = None) -> Iterator[Trajectory]:
    """Every good trajectory of one shard, in order; bad ones raise or are counted into ``skipped``."""
    check_policy(policy)
    if policy == "skip" and skipped is None:
        raise ValueError("policy 'skip' needs a Counter to count the skipped samples in")
    for sample in shard_samples([{"url": str(path)}], policy):
        item = parse(sample, policy)
        if isinstance(item, Trajectory):
            yield item
        else:
            skipped[item[SKIP]] += 1


def read_input(shard: str | Path, policy: str) -> tuple[list[Trajectory], Counter[str]]:
    """The good trajectories of a shard-to-shard stage's input shard and the per-reason count of
    every sample dropped.

    When the input's own index records the shard's sample count, a cut short shard counts every
    sample lost after the cut under ``truncated_tar`` (not just the partial one the reader sees).
    """
    skipped: Counter[str] = Counter()
    trajectories = list(read_shard(shard, policy, skipped))
    path = Path(shard)
    expected = finished_shards(path.parent, parse_shard_name(path)[0]).get(path.name)
    missing = expected - len(trajectories) - sum(skipped.values()) if expected is not None else 0
    if missing > 0:
        bad(policy, str(shard), None, "truncated_tar",
            f"{missing} of the {expected} samples its index records are missing")
        skipped["truncated_tar"] += missing
    return trajectories, skipped


def check_finished(out_dir: str | Path, prefix: str) -> dict[str, int]:
    """The index's finished shards (name -> count), each checked to read whole with the recorded
    count: a resumed job never builds on a shard that went missing or was damaged since."""
    done = finished_shards(out_dir, prefix)
    for name, count in done.items():
        path = Path(out_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"shard '{path}' is listed in '{index_path(out_dir, prefix)}' but missing; "
                                    "remove its entry from the index to write it again")
        found = sum(1 for _ in read_shard(path))
        if found != count:
            raise ValueError(f"shard '{path}' holds {found} samples, '{index_path(out_dir, prefix)}' records {count}")
    return done
