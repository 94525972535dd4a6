"""Stamp gradient-accumulation windows with their supervised-token counts.

The loss heads divide by the number of supervised tokens in the whole optimizer step. With
``accumulate_grad_batches = k`` that count spans k micro-batches, so the training loader is read
one window ahead: every batch carries ``window_tokens`` (this rank's (text, image) counts over its
window; the module sums them over ranks).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import torch

from unigen.data.batch import Batch


class AccumulationWindows:
    """Iterate ``batches`` k at a time (Lightning's window alignment) and stamp each batch."""

    def __init__(self, batches: Iterable[Batch], k: int):
        if k < 1:
            raise ValueError(f"accumulation window must be >= 1, got {k}")
        self.batches, self.k = batches, k

    def __iter__(self) -> Iterator[Batch]:
        it = iter(self.batches)
        while window := list(islice(it, self.k)):
            counts = [b.supervised_tokens() for b in window]
            text = torch.stack([c[0] for c in counts]).sum()
            image = torch.stack([c[1] for c in counts]).sum()
            for batch in window:
                batch.window_tokens = (text, image)
                yield batch

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]
