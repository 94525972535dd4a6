"""Trajectories/s decoded + collated by TrajectoryDataModule vs bare loops that only read tar members.

All figures come from the same freshly written shards in the same run, measured alternately
(``--repeats`` rounds, best of each kept: the 2-core machine is shared, so the best is the least
disturbed). Baselines, one process each, nothing decoded:

- ``tarfile``: the stdlib streaming loop reading every member's bytes (what webdataset's own tar
  expander runs);
- ``tarstream``: the same loop with unigen's strict reader (``unigen.data.tarstream``), which the
  DataModule uses.

The DataModule reads, checks, parses, shuffles, tokenizes, builds the sequences and pads them into
batches in ``--workers`` processes (one epoch per round; persistent workers, so only the first
round pays the fork). For context on a shared machine, the same DataModule also runs with 0
workers, with its rate per CPU-second of the process (what one free core would give).

    python benchmarks/dataloader.py --model janus-tiny --samples 20000 --workers 2
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.trajectories import TrajectoryDataModule  # noqa: E402
from unigen.data.synthesize import write_synthetic_shards  # noqa: E402
from unigen.data.tarstream import tar_members  # noqa: E402
from unigen.models.loading import load_spec  # noqa: E402


def count_samples(names) -> int:
    samples, last = 0, None
    for name in names:
        key = name.partition(".")[0]
        samples += key != last
        last = key
    return samples


def tarfile_read(paths: list[Path]) -> int:
    """Samples in the shards, every member's bytes read by the stdlib ``tarfile`` stream reader."""
    def names():
        for path in paths:
            with tarfile.open(path, mode="r|") as tar:
                for member in tar:
                    tar.extractfile(member).read()
                    yield member.name
    return count_samples(names())


def tarstream_read(paths: list[Path]) -> int:
    """Samples in the shards, every member's bytes read by unigen's tar reader."""
    def names():
        for path in paths:
            with open(path, "rb", buffering=1 << 20) as stream:
                yield from (name for name, _ in tar_members(stream))
    return count_samples(names())


def datamodule_read(dm: TrajectoryDataModule) -> int:
    return sum(len(batch.keys) for batch in dm.train_dataloader())


def rate(fn, *args) -> tuple[int, float, float]:
    """(items, items per wall second, items per CPU second of this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    n = fn(*args)
    return n, n / (time.perf_counter() - start), n / max(time.process_time() - cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="janus-tiny", help="model source for the token geometry")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--shard_size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (best of each kept)")
    args = parser.parse_args()
    spec = load_spec(args.model)
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_synthetic_shards(tmp, spec.image.num_tokens, spec.image.codebook_size, args.samples, args.shard_size)
        dm = TrajectoryDataModule([f"{tmp}/train-*.tar"], batch_size=args.batch_size, num_workers=args.workers,
                                  shuffle_buffer=1000, shardshuffle=100)
        inline = TrajectoryDataModule([f"{tmp}/train-*.tar"], batch_size=args.batch_size, num_workers=0,
                                      shuffle_buffer=1000, shardshuffle=100)
        for module in (dm, inline):
            module.connect(spec)
            module.setup("fit")
        tarfile_read(paths)  # warm the page cache
        for _ in range(args.repeats):
            for name, fn, arg in (("tarfile", tarfile_read, paths), ("tarstream", tarstream_read, paths),
                                  ("datamodule", datamodule_read, dm), ("inline", datamodule_read, inline)):
                n, r, per_cpu = rate(fn, arg)
                assert n == args.samples, (name, n)
                best[name] = max(best.get(name, 0.0), r)
                best[name + "_cpu"] = max(best.get(name + "_cpu", 0.0), per_cpu)
                print(f"  round: {name:10s} {r:10,.0f} trajectories/s", flush=True)
    print(f"model {args.model}: {spec.image.num_tokens} image ids/trajectory, {args.samples} trajectories in "
          f"{len(paths)} shards, batch {args.batch_size}, best of {args.repeats}")
    print(f"bare read, stdlib tarfile (1 process):      {best['tarfile']:10,.0f} trajectories/s")
    print(f"bare read, unigen tarstream (1 process):    {best['tarstream']:10,.0f} trajectories/s")
    print(f"TrajectoryDataModule, {args.workers} workers:   {best['datamodule']:10,.0f} trajectories/s "
          "(decoded + collated)")
    print(f"same DataModule, 0 workers (in process): {best['inline']:10,.0f} trajectories/s, "
          f"{best['inline_cpu']:,.0f} per CPU-second (bare tarfile read: {best['tarfile_cpu']:,.0f} per CPU-second)")
    print(f"ratio DataModule / bare tarfile read:   {best['datamodule'] / best['tarfile']:.2f}")
    print(f"ratio DataModule / bare tarstream read: {best['datamodule'] / best['tarstream']:.2f}")


if __name__ == "__main__":
    main()
