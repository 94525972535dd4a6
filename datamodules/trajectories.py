"""Stream trajectory shards (format v1, ``docs/trajectories.md``) into padded training batches."""

from __future__ import annotations

import logging
import math
import os
import random
from collections import Counter
from functools import partial
from typing import Any

import webdataset as wds
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from datamodules.sequences import SequenceDataModule
from unigen.data.batch import Batch
from unigen.data.reader import check_policy, shard_samples
from unigen.data.resumable import ResumableStream, epoch_seed
from unigen.data.shards import expand_shards
from unigen.data.stream import FromWorkers, batches, prompt_groups, to_examples, to_numpy
from unigen.data.workers import worker_init

log = logging.getLogger(__name__)


class TrajectoryDataModule(SequenceDataModule):
    """WebDataset streaming of trajectory shards: split by node and worker, shuffled, built into
    sequences with the model's own template (``connect(spec)``), collated by padding.

    Every batch leaves the loader with ``skipped`` ({reason: count} met since the previous batch);
    ``on_after_batch_transfer`` empties it, keeps the totals, logs ``data/skipped_<reason>`` and
    ``teardown`` summarises them.

    Each training epoch's stream is rebuilt from (``seed``, epoch), so a run resumed from a
    checkpoint mid-epoch continues with the very batches the interrupted run would have read next
    (``unigen.data.resumable.ResumableStream``). Worker processes die with their parent
    (``unigen.data.workers``).
    """

    def __init__(
        self,
        train_shards: list[str],
        val_shards: list[str] | None = None,
        batch_size: int = 16,
        val_batch_size: int | None = None,
        mode: str = "unified",
        num_workers: int = 2,
        shuffle_buffer: int = 1000,
        shardshuffle: int | bool = 100,
        resampled: bool = False,
        batches_per_epoch: int = 1000,
        on_bad_sample: str = "skip",
        pack_length: int | None = None,
        condition_dropout: float = 0.0,
        group_by_prompt: bool = False,
        seed: int | None = None,
    ):
        """
        Args:
            train_shards: shard paths, brace patterns (``d/train-{000000..000009}.tar``) or globs.
            val_shards: validation shards (same forms); none: no validation loader.
            batch_size: per-rank micro-batch size (each worker's last batch of an epoch may be smaller).
            val_batch_size: validation batch size; default ``batch_size``.
            mode: ``unified`` | ``explicit`` | ``direct`` (see ``unigen.data.trajectory.MODES``).
            num_workers: DataLoader worker processes per rank (shards are split between them).
            shuffle_buffer: samples in the training shuffle buffer (0 or 1: no shuffling).
            shardshuffle: shard-order shuffle buffer per worker (False / 0: file order).
            resampled: draw shards with replacement forever (each rank and worker independently) and
                cut epochs at ``batches_per_epoch``: for multi-node runs driven by ``max_steps``, where
                every rank must see the same number of batches.
            batches_per_epoch: batches per rank and epoch when ``resampled``.
            on_bad_sample: ``skip`` (count and log per reason) | ``raise`` (name shard, key, reason).
            pack_length: pack each batch's samples into rows of at most this many tokens
                (``unigen.data.packing``; at least the model's context); none: one padded row per sample.
            condition_dropout: share of training samples (with an image) whose prompt and reasoning
                become the unconditional form the sampler's guidance rows use, with only the image
                supervised: trains the branch classifier-free guidance steers against (Janus: 0.1).
            group_by_prompt: keep each prompt's consecutive samples together (shuffled as a group,
                never split across batches), so reward weighting with ``group: prompt`` sees all K
                samples of a prompt (the loop writes them consecutively); batches then hold whole
                groups (at most ``batch_size`` samples unless one group is larger).
            seed: seed of the shard and sample shuffles and of condition dropout; None: the run's
                ``seed_everything`` (0 without one).
        """
        super().__init__(batch_size, mode, pack_length)
        check_policy(on_bad_sample)
        if not 0 <= condition_dropout < 1:
            raise ValueError(f"condition_dropout must be in [0, 1), got {condition_dropout}")
        self.skipped: Counter[str] = Counter()
        self.train_paths: list[str] = []
        self.val_paths: list[str] = []

    def setup(self, stage: str) -> None:
        """Resolve the shard patterns (an error names a pattern that matches nothing) and refuse
        fewer train shards than ranks: shards are split by rank, and a rank without one would spin
        through empty epochs while the others wait for it."""
        self.train_paths = expand_shards(self.hparams.train_shards, "train_shards")
        self.val_paths = expand_shards(self.hparams.val_shards, "val_shards") if self.hparams.val_shards else []
        ranks = self.trainer.world_size if self.trainer is not None else 1
        if stage == "fit" and not self.hparams.resampled and len(self.train_paths) < ranks:
            raise ValueError(f"train_shards: {len(self.train_paths)} shard(s) for {ranks} ranks; each rank reads whole "
                             "shards, so write at least one shard per rank (smaller shards), train on fewer ranks, "
                             "or set resampled: true")

    @property
    def data_seed(self) -> int:
        """``seed``, or the run's ``seed_everything`` (0 without one)."""
        seed = self.hparams.seed
        return seed if seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))

    def pipeline(self, paths: list[str], train: bool, epoch: int = 0) -> wds.DataPipeline:
        """shards -> (node, worker split) -> tar samples -> shuffle -> examples -> batches; the
        shuffles and resampling are a function of (``seed``, ``epoch``)."""
        hp = self.hparams
        seed = epoch_seed(self.data_seed, epoch)
        rng = random.Random(seed)
        if train and hp.resampled:
            stages: list[Any] = [wds.ResampledShards(paths, seed=seed, deterministic=True)]
        else:
            stages = [wds.SimpleShardList(paths), wds.split_by_node, wds.split_by_worker]
            if train and hp.shardshuffle:
                stages.append(wds.shuffle(int(hp.shardshuffle), initial=1, rng=rng))
        stages.append(partial(shard_samples, policy=hp.on_bad_sample))
        if hp.group_by_prompt:
            stages.append(prompt_groups)
        if train and hp.shuffle_buffer > 1:
            stages.append(wds.shuffle(hp.shuffle_buffer, initial=min(100, hp.shuffle_buffer), rng=rng))
        stages.append(partial(to_examples, spec=self.spec, mode=hp.mode, policy=hp.on_bad_sample,
                              condition_dropout=hp.condition_dropout if train else 0.0, seed=seed))
        size = hp.batch_size if train else (hp.val_batch_size or hp.batch_size)
        stages.append(partial(batches, size=size, make_batch=self.make_batch()))
        pipe = wds.DataPipeline(*stages)
        if train and hp.resampled:
            pipe = pipe.with_epoch(math.ceil(hp.batches_per_epoch / max(1, hp.num_workers)))
        return pipe

    def _loader(self, pipeline: wds.DataPipeline, persistent: bool) -> DataLoader | FromWorkers:
        workers = self.hparams.num_workers
        if workers == 0:
            return DataLoader(pipeline, batch_size=None)
        return FromWorkers(DataLoader(pipeline, batch_size=None, num_workers=workers, persistent_workers=persistent,
                                      collate_fn=to_numpy, worker_init_fn=worker_init()))

    def train_epoch(self, epoch: int) -> DataLoader | FromWorkers:
        """The training batches of ``epoch`` (the same ones on every run)."""
        return self._loader(self.pipeline(self.train_paths, train=True, epoch=epoch), persistent=False)

    def train_dataloader(self) -> ResumableStream:
        return ResumableStream(self.train_epoch, self.trainer, seed=self.data_seed)

    def val_dataloader(self) -> DataLoader | FromWorkers | list:
        return self._loader(self.pipeline(self.val_paths, train=False), persistent=True) if self.val_paths else []

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        """Take the batch's skip counts out, add them to the totals and log the totals."""
        new, batch.skipped = batch.skipped, {}
        if new:
            self.skipped.update(new)
            self._log_skips()
        return batch

    def _log_skips(self) -> None:
        """``data/skipped_<reason>`` (this rank's running totals) to the trainer's loggers.

        Logged through the loggers directly: Lightning forbids ``self.log`` in batch-transfer hooks.
        """
        if self.trainer is None:
            return
        metrics = {f"data/skipped_{reason}": float(n) for reason, n in self.skipped.items()}
        for logger in self.trainer.loggers:
            logger.log_metrics(metrics, step=self.trainer.global_step)

    def teardown(self, stage: str) -> None:
        """Summarise the skips of the run."""
        rank = self.trainer.global_rank if self.trainer else 0
        stage = getattr(stage, "value", stage)
        if self.skipped:
            detail = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items()))
            log.warning("rank %d %s: skipped %d bad samples (%s)", rank, stage, sum(self.skipped.values()), detail)
        else:
            rank_zero_info(f"{stage}: no bad samples skipped")
