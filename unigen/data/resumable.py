"""Training loaders that resume mid-epoch where the checkpoint left off.

Each epoch's order is a pure function of (seed, epoch), so a checkpoint only needs the epoch and
how many micro-batches of it the optimizer has already stepped on. Lightning saves that through
``state_dict`` with every checkpoint and hands it back through ``load_state_dict`` before the
resumed run iterates; the resumed epoch then starts at the next unconsumed batch. The position
comes from the trainer's optimizer steps, not from how far the loader has read ahead
(prefetching and accumulation windows read ahead), and a window cut by a requeue signal is read
again from its start, as its partial gradients are not in the checkpoint either.

Two sources: :class:`ResumableBatches` (a map-style dataset: consumed batches are skipped on
indices, never loaded) and :class:`ResumableStream` (a stream rebuilt per epoch from (seed,
epoch), e.g. trajectory shards: consumed batches are read again and dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from unigen.data.batch import Batch
from unigen.data.windows import AccumulationWindows
from unigen.data.workers import worker_init


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of ``epoch``'s order: one per (seed, epoch), the same on every run."""
    return seed * 1_000_003 + epoch


class ResumableEpochs:
    """Epoch and position bookkeeping; subclasses give an epoch's batches from a starting batch."""

    def __init__(self, trainer: L.Trainer | None, seed: int = 0):
        self.trainer, self.seed = trainer, seed
        self.epoch = 0
        self._started = False
        self._resume_skip: int | None = None
        self._epoch_start_step = 0
        self._epoch_batches: int | None = None

    @property
    def accumulate(self) -> int:
        return self.trainer.accumulate_grad_batches if self.trainer else 1

    @property
    def step(self) -> int:
        """The trainer's optimizer steps (0 outside a Trainer)."""
        return self.trainer.global_step if self.trainer else 0

    def known_length(self) -> int | None:
        """Batches per epoch when known before reading it (None for streams)."""
        return None

    def epoch_batches(self, epoch: int, skip: int) -> Iterable[Batch]:
        """The micro-batches of ``epoch`` from batch ``skip`` on."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Batch]:
        skip, self._resume_skip = self._resume_skip, None
        if skip is None:
            skip = 0
            self.epoch += int(self._started)
        length = self.known_length()
        if length is not None and skip >= length:  # the checkpoint was taken at the end of its epoch
            self.epoch, skip = self.epoch + 1, 0
        self._started = True
        self._epoch_start_step = self.step - skip // self.accumulate
        self._epoch_batches = length
        return iter(AccumulationWindows(self._counted(self.epoch_batches(self.epoch, skip), skip), self.accumulate))

    def _counted(self, batches: Iterable[Batch], skip: int) -> Iterator[Batch]:
        """Pass ``batches`` through; once they end, the epoch's length is known."""
        n = skip
        for n, batch in enumerate(batches, skip + 1):
            yield batch
        self._epoch_batches = n

    def state_dict(self) -> dict[str, Any]:
        stepped = (self.step - self._epoch_start_step) * self.accumulate
        if self._epoch_batches is not None and stepped >= self._epoch_batches:
            return {"epoch": self.epoch + 1, "consumed": 0, "seed": self.seed}
        return {"epoch": self.epoch, "consumed": stepped, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise ValueError(f"checkpoint data seed {state['seed']} differs from the configured seed {self.seed}")
        self.epoch, self._resume_skip, self._started = int(state["epoch"]), int(state["consumed"]), True


class ResumableBatches(ResumableEpochs):
    """Shuffled (or ordered) micro-batches of a map-style dataset, stamped with accumulation windows."""

    def __init__(self, dataset: Sequence, batch_size: int, collate_fn: Callable[[list], Batch], trainer: L.Trainer,
                 shuffle: bool = True, seed: int = 0, num_workers: int = 0):
        if len(dataset) < batch_size:
            raise ValueError(f"{len(dataset)} training samples on this rank, fewer than one batch of {batch_size}")
        super().__init__(trainer, seed)
        self.dataset, self.batch_size, self.collate_fn = dataset, batch_size, collate_fn
        self.shuffle, self.num_workers = shuffle, num_workers

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size

    def known_length(self) -> int:
        return len(self)

    def order(self, epoch: int) -> list[int]:
        """Sample indices of ``epoch`` (the same on every run)."""
        if not self.shuffle:
            return list(range(len(self.dataset)))
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        return torch.randperm(len(self.dataset), generator=generator).tolist()

    def epoch_batches(self, epoch: int, skip: int) -> DataLoader:
        order, size = self.order(epoch), self.batch_size
        batches = [order[i * size:(i + 1) * size] for i in range(skip, len(self))]
        return DataLoader(self.dataset, batch_sampler=batches, collate_fn=self.collate_fn,
                          num_workers=self.num_workers, worker_init_fn=worker_init() if self.num_workers else None)


class ResumableStream(ResumableEpochs):
    """Micro-batches of a stream that ``make_epoch(epoch)`` rebuilds in the same order for the same epoch."""

    def __init__(self, make_epoch: Callable[[int], Iterable[Batch]], trainer: L.Trainer | None, seed: int = 0):
        super().__init__(trainer, seed)
        self.make_epoch = make_epoch

    def epoch_batches(self, epoch: int, skip: int) -> Iterator[Batch]:
        return islice(self.make_epoch(epoch), skip, None)
