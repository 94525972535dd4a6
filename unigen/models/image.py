"""The image seam: what a model family says about its images, and the one object that handles them.

:class:`ImageSpec` is the image half of a model's spec (beside the text ids of
:class:`unigen.models.unified.TokenSpec`): the payload one image is stored and trained as
(``tokens``: discrete codebook ids, Janus; ``latents``: continuous autoencoder latents, BAGEL),
its shape and dtype, the latent / token grid and the side in pixels.

:class:`ImageHead` holds the four things that differ between families, so nothing above the
models floor special-cases a family:

- **layout**: the slots of an image block in a sequence (:meth:`ImageHead.block`: ids, payload,
  targets, rotary position offsets) and the attention pattern inside it
  (:attr:`ImageHead.attention`: ``causal`` for VQ ids predicted one by one, ``bidirectional``
  inside a noised latent block, which no later token reads);
- **loss**: :meth:`ImageHead.inputs` embeds a training batch (a flow head noises its latents
  there) and :meth:`ImageHead.loss` sums the weighted loss over the supervised image positions,
  which the trainer divides by the global count (``unigen.losses``);
- **sampling phase**: :meth:`ImageHead.sample_step` (an autoregressive head: the next payload
  element of each row) or :meth:`ImageHead.draw` (a block head: the whole payload at once, over
  the context the text phase left in the KV cache);
- **decoding** to pixels: :meth:`ImageHead.decode`.

A head is stateless and picklable (data workers get it with the spec); where it needs weights it
takes the model (the family's ``UnifiedModel`` adapter) as an argument. :class:`CodebookHead` is
the discrete-id head (Janus); BAGEL's flow head is ``unigen.models.bagel.flow_head.FlowHead``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from unigen.losses import IGNORE, HeadOutput, weighted_token_ce

IMAGE_KINDS = ("tokens", "latents")
ATTENTION_PATTERNS = ("causal", "bidirectional")


@dataclass(frozen=True)
class ImageSpec:
    """One image as the model stores, trains and samples it."""

    kind: str
    """``tokens`` (discrete codebook ids) or ``latents`` (continuous autoencoder latents)."""
    shape: tuple[int, ...]
    """Payload shape of one image: ``(N,)`` ids, or ``(N, channels)`` latent tokens; N = grid cells."""
    dtype: str
    """Payload dtype as numpy names it (``int64`` for ids)."""
    grid: tuple[int, int]
    """(rows, columns) of image tokens, raster order."""
    size: int
    """Side of the square images the model encodes and decodes, in pixels."""
    codebook_size: int | None = None
    """Number of codes (``tokens`` only)."""

    def __post_init__(self) -> None:
        if self.kind not in IMAGE_KINDS:
            raise ValueError(f"image kind '{self.kind}' is not one of {IMAGE_KINDS}")
        if not self.shape or self.shape[0] != self.grid[0] * self.grid[1]:
            raise ValueError(f"image payload shape {self.shape} must start with the grid's "
                             f"{self.grid[0]}x{self.grid[1]} = {self.grid[0] * self.grid[1]} tokens")
        discrete = np.issubdtype(np.dtype(self.dtype), np.integer)
        if (self.kind == "tokens") != (discrete and self.codebook_size is not None and len(self.shape) == 1):
            raise ValueError(f"an image of kind '{self.kind}' has shape {self.shape}, dtype {self.dtype} and "
                             f"codebook_size {self.codebook_size}: `tokens` are (N,) integer ids of a codebook, "
                             "`latents` a float payload without one")

    @property
    def num_tokens(self) -> int:
        """Image positions in a sequence (grid cells)."""
        return self.grid[0] * self.grid[1]


class ImagePayloadError(ValueError):
    """An image payload that does not fit the model; ``reason`` is a short slug (as ``BadSample``'s)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class ImageBlock:
    """The slots of one image block in a sequence (targets not yet shifted)."""

    ids: list[int]
    """Per slot: a text id (the block's markers) or, where ``image``, a payload id (0 for a
    continuous payload, which travels in ``values``)."""
    image: list[bool]
    """Slots that hold the image payload."""
    text_targets: list[int]
    """Text id each slot is trained to be (``IGNORE`` where none)."""
    image_targets: list[int]
    """Payload id each slot is trained to be (``IGNORE`` where none); a head that does not predict
    the next element (:attr:`ImageHead.autoregressive` false) marks its supervised slots with 0."""
    positions: list[int]
    """Rotary position of each slot, relative to the block's first slot."""
    values: np.ndarray | None = None
    """The continuous payload ((N, C) float32) of the ``image`` slots in order; None for ids."""


def guide(logits: torch.Tensor, cfg: float) -> torch.Tensor:
    """Classifier-free guidance over rows stacked [conditional; unconditional]: u + s (c - u)."""
    if cfg == 1.0:
        return logits
    cond, uncond = logits.chunk(2, dim=0)
    return uncond + cfg * (cond - uncond)


class ImageHead(ABC):
    """How one family lays out, trains, samples and decodes an image (see the module docstring)."""

    autoregressive: bool
    """True: payload elements are predicted one by one, each from the position before it (causal
    attention, targets shifted like text, :meth:`sample_step`). False: the block is produced as a
    whole (bidirectional inside, invisible to later tokens, targets at the slots themselves,
    :meth:`draw`)."""
    empty_unconditional: bool = False
    """The unconditional context of guidance and condition dropout: False, the same sequence with
    its text in the unconditional form (``TokenSpec.unconditional``); True, no text at all (the
    image block alone, as BAGEL's text-free context)."""

    @property
    def attention(self) -> str:
        """Attention inside an image block: ``causal`` or ``bidirectional`` (:data:`ATTENTION_PATTERNS`)."""
        return "causal" if self.autoregressive else "bidirectional"

    def __init__(self, spec: ImageSpec, begin_id: int, end_id: int):
        """``begin_id`` / ``end_id``: the text ids that open and close an image block."""
        self.spec, self.begin_id, self.end_id = spec, begin_id, end_id

    @abstractmethod
    def check(self, payload: np.ndarray) -> np.ndarray:
        """The payload as the model takes it; :class:`ImagePayloadError` when it does not fit."""

    @abstractmethod
    def block(self, payload: np.ndarray, switch_target: int) -> ImageBlock:
        """The slots of an image block; ``switch_target``: the text target at the opening slot."""

    @abstractmethod
    def inputs(self, model: nn.Module, ids: torch.Tensor, image_mask: torch.Tensor, values: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, Any]:
        """(R, T, H) input embeddings of a training batch (``values``: the continuous payload of
        the ``image_mask`` slots in order; ``generator``: the head's training noise), and the state
        :meth:`loss` needs from them."""

    @abstractmethod
    def loss(self, model: nn.Module, hidden: torch.Tensor, labels: torch.Tensor, token_weight: torch.Tensor,
             state: Any, chunk_size: int = 0) -> HeadOutput:
        """Weighted loss sums over the supervised positions of ``labels`` (``unigen.losses``)."""

    def sample_step(self, model: nn.Module, hidden: torch.Tensor, guidance: float,
                    pick: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Autoregressive heads: (R, H) last hidden states -> the next payload element of each
        conditional row; ``pick`` chooses from a distribution (the sampler's filters and per-row noise)."""
        raise NotImplementedError(f"{type(self).__name__} draws whole blocks (draw), not one element per step")

    def draw(self, model: nn.Module, context: Any, noise: torch.Tensor, guidance: float,
             settings: dict[str, Any]) -> torch.Tensor:
        """Block heads: (B, *payload shape) payloads of the rows whose text phase left ``context``
        (the model's KV cache and key mask, ``UnifiedModel.block_context``), from ``noise`` of that
        shape; ``guidance``: the guidance scale, ``settings``: the head's sampling settings."""
        raise NotImplementedError(f"{type(self).__name__} samples one element per step (sample_step), not blocks")

    @abstractmethod
    def decode(self, model: nn.Module, payload: torch.Tensor) -> torch.Tensor:
        """(B, *payload shape) -> (B, 3, H, W) pixels in [-1, 1]."""


class CodebookHead(ImageHead):
    """Discrete image ids in their own vocabulary (Janus): ``[begin] ids [end]``, causal; weighted
    token cross-entropy over the codebook; next-id sampling with logit guidance; VQ decoding."""

    autoregressive = True

    def check(self, payload: np.ndarray) -> np.ndarray:
        tokens, spec = np.asarray(payload), self.spec
        if len(tokens) != spec.num_tokens:
            raise ImagePayloadError("image_token_count", f"{len(tokens)} image ids, the model draws {spec.num_tokens}")
        if tokens.min() < 0 or tokens.max() >= spec.codebook_size:
            raise ImagePayloadError("image_id_range", f"image ids outside [0, {spec.codebook_size})")
        return tokens

    def block(self, payload: np.ndarray, switch_target: int) -> ImageBlock:
        ids = self.check(payload).tolist()
        return ImageBlock(
            ids=[self.begin_id, *ids, self.end_id],
            image=[False, *[True] * len(ids), False],
            text_targets=[switch_target, *[IGNORE] * len(ids), self.end_id],
            image_targets=[IGNORE, *ids, IGNORE],
            positions=list(range(len(ids) + 2)),
        )

    def inputs(self, model: nn.Module, ids: torch.Tensor, image_mask: torch.Tensor, values: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, None]:
        return model.embed_mixed(ids, image_mask), None

    def loss(self, model: nn.Module, hidden: torch.Tensor, labels: torch.Tensor, token_weight: torch.Tensor,
             state: None = None, chunk_size: int = 0) -> HeadOutput:
        return weighted_token_ce(model.image_logits, hidden, labels, token_weight, chunk_size)

    def sample_step(self, model: nn.Module, hidden: torch.Tensor, guidance: float,
                    pick: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return pick(guide(model.image_logits(hidden).float(), guidance))

    def decode(self, model: nn.Module, payload: torch.Tensor) -> torch.Tensor:
        return model.decode_images(payload)
