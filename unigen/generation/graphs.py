"""The decode step with fixed shapes and no host syncs, replayed as CUDA graphs.

A decoding step of a small model on a GPU is launch-bound: hundreds of small kernels, each
launched from Python, for a few milliseconds of memory traffic. Here one step (choose every row's
next token from its head(s), embed it, one backbone call writing the next slot of the static KV
cache) reads and writes only tensors with fixed addresses: the step counter lives on the device,
the noise is hashed from it (``StepNoise``), every row's state is updated in place and the cache
advances its own device-side length. So the step can be captured once in a ``torch.cuda.CUDAGraph``
and replayed: one launch per step.

Two graphs: the *text* step runs the LM head and the image head (rows are in different phases),
the *image* step only the image head, used once no row is left in text (never in ``interleaved``
mode, where a row can go back to text between two checks). Which one to replay, and
whether every row is done, is read on the host only every ``check_every`` steps; extra steps past
the end change no row's output (a finished row keeps its slot and its results). Per-row switching,
CFG rows and counter-based seeds are the eager loop's code (``RowStates``), so the ids are the
same; ``decoder="static"`` runs this step without capture, which the CPU tests compare with the
eager loop.
"""

from __future__ import annotations

from typing import Any

import torch

from unigen.generation.rows import DONE, TEXT, RowStates, next_embeds
from unigen.models.unified import UnifiedModel


class StaticDecoder:
    """Decode ``steps`` tokens per row after the prefill, one fixed-shape step at a time."""

    def __init__(
        self,
        model: UnifiedModel,
        rows: RowStates,
        masks: Any,
        cache: Any,
        hidden: torch.Tensor,
        next_pos: torch.Tensor,
        width: int,
        steps: int,
        check_every: int = 8,
    ):
        """
        Args:
            masks: ``DecodeMasks`` (``at(slot)`` accepts a device tensor).
            cache: the static KV cache after the prefill of ``width`` prompt slots.
            hidden: (R, H) last hidden states of the prefill.
            next_pos: (R, 1) position ids of the first decoded token.
            check_every: steps between host reads of the rows' phases.
        """
        self.model, self.rows, self.masks, self.cache = model, rows, masks, cache
        self.width, self.steps, self.check_every = width, steps, check_every
        self.hidden = hidden.clone()
        self.next_pos = next_pos.clone()
        self.step_index = torch.zeros((), dtype=torch.long, device=hidden.device)
        self.graphs: dict[bool, torch.cuda.CUDAGraph] = {}
        self.pool: Any = None

    def step(self, text: bool) -> None:
        """One decoding step, in place: ``text`` runs the LM head too (some row may be in text)."""
        step = self.step_index
        text_ids, image_ids, use_image = self.rows.step(self.hidden, step, text=text, image=True)
        embeds = next_embeds(self.model, text_ids, image_ids, use_image)
        hidden, _ = self.model.backbone(embeds, self.masks.at(self.width + step), self.next_pos, self.cache,
                                        use_cache=True)
        self.hidden.copy_(hidden[:, -1])
        self.next_pos.add_(1)
        self.step_index.add_(1)

    def run(self, cuda_graphs: bool) -> None:
        """Decode until every row is done (checked every ``check_every`` steps) or ``steps`` ran."""
        n = self.rows.phase.shape[0]
        text = False
        for step in range(self.steps):
            if step % self.check_every == 0:
                counts = self.rows.phase_counts()
                if counts[DONE] == n:
                    return
                # interleaved rows re-enter text (EOI, reflection) between checks: always run the text step
                text = counts[TEXT] > 0 or self.rows.config.images_per_row > 1
            if cuda_graphs:
                self._replay(text)
            else:
                self.step(text)

    def _replay(self, text: bool) -> None:
        """Replay the captured step; the first call of a kind runs it eagerly (warm-up) on a side
        stream and then captures it, so no step is run twice or skipped."""
        graph = self.graphs.get(text)
        if graph is not None:
            graph.replay()
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.step(text)  # a real step: lazy initialisation happens outside the capture
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            self.step(text)  # recorded, not executed
        self.pool = graph.pool()
        self.graphs[text] = graph
        # the warm-up was this call's step; the recorded one runs from the next call on
