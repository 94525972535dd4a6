"""In-memory synthetic trajectories (``unigen.data.synthesize``) as a DataModule: for smoke tests,
equivalence tests (DDP, accumulation, packing) and recipes run without shards."""

from __future__ import annotations

from torch.utils.data import DataLoader

from datamodules.sequences import SequenceDataModule
from unigen.data.resumable import ResumableBatches
from unigen.data.sequence import Example, build_example
from unigen.data.synthesize import image_geometry, synthetic_trajectories


class SyntheticDataModule(SequenceDataModule):
    """In-memory synthetic trajectories, split by rank, batched with the shared collate."""

    def __init__(self, train_samples: int = 512, val_samples: int = 64, batch_size: int = 16,
                 mode: str = "unified", num_workers: int = 0, seed: int = 0, shuffle: bool = True,
                 pack_length: int | None = None):
        """
        Args:
            train_samples: number of training trajectories (all ranks together).
            val_samples: number of validation trajectories.
            batch_size: per-rank micro-batch size.
            mode: ``unified`` | ``explicit`` | ``direct`` (see ``unigen.data.trajectory.MODES``).
            num_workers: DataLoader workers.
            seed: seed of the synthetic prompts.
            shuffle: reshuffle the training set every epoch, from (seed, epoch) so a resumed run
                continues the same order (off: fixed order, for equivalence tests).
            pack_length: pack each batch's samples into rows of at most this many tokens
                (``unigen.data.packing``; at least the model's context); None pads one sample per row.
        """
        super().__init__(batch_size, mode, pack_length)

    def _examples(self, n: int, seed: int) -> list[Example]:
        trajs = synthetic_trajectories(n, seed=seed, **image_geometry(self.spec.image))
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return [build_example(t, self.spec, self.hparams.mode) for t in trajs[rank::world]]

    def train_dataloader(self) -> ResumableBatches:
        hp = self.hparams
        return ResumableBatches(self._examples(hp.train_samples, hp.seed), hp.batch_size, self.make_batch(),
                                self.trainer, shuffle=hp.shuffle, seed=hp.seed, num_workers=hp.num_workers)

    def val_dataloader(self) -> DataLoader:
        hp = self.hparams
        return DataLoader(self._examples(hp.val_samples, hp.seed + 1), batch_size=hp.batch_size,
                          num_workers=hp.num_workers, collate_fn=self.make_batch())
