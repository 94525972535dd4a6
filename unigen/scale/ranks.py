"""The processes a stage runs as: this process's rank and the world size, its part of the work, and
a barrier over all of them.

Nothing here starts a process: Slurm (``srun``), ``torchrun`` or Lightning do, and Lightning's cluster
environments read what they set (``TorchElasticEnvironment``: ``RANK`` / ``WORLD_SIZE``;
``SLURMEnvironment``: ``SLURM_PROCID`` / ``SLURM_NTASKS``, a job named ``bash`` or ``interactive``
counting as none); anything else is one process. The barrier joins the default process group
(``MASTER_ADDR`` / ``MASTER_PORT`` from the same environment) unless one is already up; a later
Lightning fit in the same process reuses that group instead of starting its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from lightning.fabric.plugins.environments import ClusterEnvironment, SLURMEnvironment, TorchElasticEnvironment

T = TypeVar("T")

STAGE_TIMEOUT = timedelta(days=2)
"""How long a barrier waits for the slowest process of a stage (a dead one ends the job sooner:
``srun --kill-on-bad-exit``)."""
_barrier_group: dist.ProcessGroup | None = None


@dataclass(frozen=True)
class Ranks:
    """This process's rank in a world of ``world`` cooperating processes (``local``: on its node)."""

    rank: int = 0
    world: int = 1
    local: int = 0

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} of world size {self.world} is not a valid rank")

    @property
    def is_zero(self) -> bool:
        return self.rank == 0

    def part(self, items: Sequence[T]) -> list[T]:
        """This rank's items: item i goes to rank i % world (the same on every restart)."""
        return list(items[self.rank::self.world])


def environment() -> ClusterEnvironment | None:
    """The launcher's environment (torchrun first, then Slurm), or None for a lone process."""
    for cls in (TorchElasticEnvironment, SLURMEnvironment):
        if cls.detect():
            return cls()
    return None


def current() -> Ranks:
    """This process's rank and world size: the process group's when one is up, else the launcher's."""
    env = environment()
    local = env.local_rank() if env is not None else 0
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size(), local)
    return Ranks(env.global_rank(), env.world_size(), local) if env is not None else Ranks()


def join() -> Ranks:
    """:func:`current`, with this rank's GPU (its local rank among the visible ones) made the current
    CUDA device, so a stage's and its rewards' ``cuda`` means it."""
    ranks = current()
    if ranks.world > 1 and torch.cuda.is_available():
        torch.cuda.set_device(ranks.local % torch.cuda.device_count())
    return ranks


def barrier() -> None:
    """Wait until every process of the world arrives here (nothing to wait for in a world of one)."""
    global _barrier_group
    ranks = current()
    if ranks.world == 1:
        return
    if not dist.is_initialized():
        env = environment()
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = env.main_address, str(env.main_port)
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world)
    if _barrier_group is None:
        _barrier_group = dist.new_group(backend="gloo", timeout=STAGE_TIMEOUT)
    dist.barrier(group=_barrier_group)
