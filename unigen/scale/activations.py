"""Selective activation checkpointing: keep what is expensive to recompute, recompute the rest.

Full checkpointing of a decoder layer stores only its input and re-runs the whole layer in
backward (about a third more compute). The selective policy here stores the outputs of the
matrix multiplies and of the attention kernel (the FLOPs) and recomputes only the cheap,
memory-hungry elementwise ops (RMSNorm's fp32 up-casts, SiLU, the gating product, RoPE, dtype
casts), which hold most of a layer's activation bytes under bf16 autocast.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

aten = torch.ops.aten

SAVED_OPS = {
    aten.mm.default, aten.addmm.default, aten.bmm.default, aten.linear.default,
    aten._scaled_dot_product_flash_attention.default,
    aten._scaled_dot_product_efficient_attention.default,
    aten._scaled_dot_product_cudnn_attention.default,
    aten._scaled_dot_product_flash_attention_for_cpu.default,
}
"""Ops whose outputs are kept; every other op inside a checkpointed layer is recomputed."""


def _policy(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE if op in SAVED_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def checkpoint_kwargs(mode: str) -> dict[str, Any]:
    """``torch.utils.checkpoint.checkpoint`` keyword arguments for ``full`` or ``selective``."""
    if mode == "full":
        return {"use_reentrant": False}
    if mode == "selective":
        return {"use_reentrant": False, "context_fn": partial(create_selective_checkpoint_contexts, _policy)}
    raise ValueError(f"activation checkpointing '{mode}' is not one of 'full', 'selective'")
