"""The base of unigen's DataModules: the model hands over its token spec, batches come from one collate."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import lightning as L

from unigen.data.batch import Batch, collate
from unigen.data.sequence import Example
from unigen.data.trajectory import MODES
from unigen.models.unified import TokenSpec


class SequenceDataModule(L.LightningDataModule):
    """Training sequences built with the model's own template, batched by ``unigen.data.batch.collate``.

    The LightningModule calls :meth:`connect` in its ``setup`` (before any loader is built). A
    subclass supplies the loaders; it passes the shared arguments up and its own are saved as
    hyperparameters with them (Lightning collects the arguments of every ``__init__`` in the chain).
    """

    def __init__(self, batch_size: int, mode: str, pack_length: int | None):
        """
        Args:
            batch_size: per-rank micro-batch size.
            mode: ``unified`` | ``explicit`` | ``direct`` (see ``unigen.data.trajectory.MODES``).
            pack_length: pack each batch's samples into rows of at most this many tokens
                (``unigen.data.packing``; at least the model's context); None: one padded row per sample.
        """
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode '{mode}' is not one of {MODES}")
        self.save_hyperparameters()
        self._spec: TokenSpec | None = None

    def connect(self, spec: TokenSpec) -> None:
        """Receive tokenizer and image geometry from the model (called before loaders are built)."""
        self._spec = spec

    @property
    def spec(self) -> TokenSpec:
        """The connected model's token spec."""
        if self._spec is None:
            raise RuntimeError(f"{type(self).__name__}.connect(spec) must be called before building loaders")
        return self._spec

    def make_batch(self) -> Callable[[list[Example]], Batch]:
        """The batch builder, examples -> :class:`Batch` (padded, or packed with ``pack_length``)."""
        pack_length = self.hparams.pack_length
        if pack_length is not None and pack_length < self.spec.max_seq_len:
            raise ValueError(f"pack_length {pack_length} < the model's context {self.spec.max_seq_len}: "
                             "a sample may not fit")
        return partial(collate, pad_id=self.spec.pad_id, pack_length=pack_length)
