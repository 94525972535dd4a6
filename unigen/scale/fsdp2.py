"""FSDP2 (``fully_shard``) under Lightning: the model is built on the meta device and sharded in
``UnifiedLM.configure_model`` (``unigen.models.sharded``), so no rank holds the whole model.

``ShardedDataParallel`` is Lightning's ``ModelParallelStrategy`` with every rank in one
data-parallel dimension (no tensor parallelism): it creates the device mesh, the module shards
itself over ``mesh["data_parallel"]``. Checkpoints are torch.distributed.checkpoint folders (every
rank writes its shard) or, with ``save_distributed_checkpoint: false``, one file gathered on rank 0.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.strategies import ModelParallelStrategy
from torch.distributed.fsdp import MixedPrecisionPolicy


class ShardedDataParallel(ModelParallelStrategy):
    """FSDP2 over all ranks of all nodes."""

    def __init__(self, save_distributed_checkpoint: bool = True, **kwargs: Any):
        super().__init__(data_parallel_size="auto", tensor_parallel_size=1,
                         save_distributed_checkpoint=save_distributed_checkpoint, **kwargs)

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes
        super().setup_environment()


def mixed_precision(precision: str | None) -> MixedPrecisionPolicy:
    """FSDP2's policy for a Lightning precision: ``bf16-mixed`` / ``16-mixed`` gather and compute
    in half precision and reduce gradients in fp32; anything else keeps fp32 throughout."""
    half = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))
    return MixedPrecisionPolicy(param_dtype=half, reduce_dtype=torch.float32 if half else None)
