"""A training loader that resumes mid-epoch without reading the consumed samples again.

Each epoch's order is a pure function of (seed, epoch), so a checkpoint only needs the epoch and
how many micro-batches of it the optimizer has already stepped on. Lightning saves that through
``state_dict`` with every checkpoint and hands it back through ``load_state_dict`` before the
resumed run iterates; the resumed epoch then starts at the next unconsumed batch, and skipped
batches are never loaded (the skip happens on indices, before any sample is read or collated).
The position comes from the trainer's optimizer steps, not from how far the loader has read
ahead (prefetching and accumulation windows read ahead), and a window cut by a requeue signal is
read again from its start, as its partial gradients are not in the checkpoint either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from unigen.data.batch import Batch
from unigen.data.windows import AccumulationWindows


class ResumableBatches:
    """Shuffled (or ordered) micro-batches of a map-style dataset, stamped with accumulation windows."""

    def __init__(self, dataset: Sequence, batch_size: int, collate_fn: Callable[[list], Batch], trainer: L.Trainer,
                 shuffle: bool = True, seed: int = 0, num_workers: int = 0):
        if len(dataset) < batch_size:
            raise ValueError(f"{len(dataset)} training samples on this rank, fewer than one batch of {batch_size}")
        self.dataset, self.batch_size, self.collate_fn = dataset, batch_size, collate_fn
        self.trainer, self.shuffle, self.seed, self.num_workers = trainer, shuffle, seed, num_workers
        self.epoch = 0
        self._started = False
        self._resume_skip: int | None = None
        self._epoch_start_step = 0

    @property
    def accumulate(self) -> int:
        return self.trainer.accumulate_grad_batches

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size

    def order(self, epoch: int) -> list[int]:
        """Sample indices of ``epoch`` (the same on every run)."""
        if not self.shuffle:
            return list(range(len(self.dataset)))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.dataset), generator=generator).tolist()

    def __iter__(self) -> Iterator[Batch]:
        skip, self._resume_skip = self._resume_skip, None
        if skip is None:
            skip = 0
            self.epoch += int(self._started)
        if skip >= len(self):  # the checkpoint was taken at the end of its epoch
            self.epoch, skip = self.epoch + 1, 0
        self._started = True
        self._epoch_start_step = self.trainer.global_step - skip // self.accumulate
        order, size = self.order(self.epoch), self.batch_size
        batches = [order[i * size:(i + 1) * size] for i in range(skip, len(self))]
        loader = DataLoader(self.dataset, batch_sampler=batches, collate_fn=self.collate_fn,
                            num_workers=self.num_workers)
        return iter(AccumulationWindows(loader, self.accumulate))

    def state_dict(self) -> dict[str, Any]:
        stepped = (self.trainer.global_step - self._epoch_start_step) * self.accumulate
        return {"epoch": self.epoch, "consumed": min(stepped, len(self)), "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise ValueError(f"checkpoint data seed {state['seed']} differs from the configured seed {self.seed}")
        self.epoch, self._resume_skip, self._started = int(state["epoch"]), int(state["consumed"]), True
