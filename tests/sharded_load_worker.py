"""One rank of a 2-process gloo run of ``unigen.models.sharded.load_sharded`` (used by
tests/test_sharded_loading.py): prints one JSON line with its memory figures and checks.

Usage: ``python tests/sharded_load_worker.py <model folder> <rank> <port> <dtype> <probe tensor>``
(the probe: a parameter name of ``model.hf`` whose shard rows and first value are reported).
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist

from unigen.dtypes import torch_dtype


def rss_bytes(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def main() -> None:
    folder, rank, port, dtype, probe = sys.argv[1], int(sys.argv[2]), sys.argv[3], torch_dtype(sys.argv[4]), sys.argv[5]
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    from torch.distributed.device_mesh import init_device_mesh

    from unigen.models.sharded import load_sharded

    mesh = init_device_mesh("cpu", (2,))
    before = rss_bytes("VmRSS")
    model = load_sharded(folder, mesh, "cpu", dtype=dtype)
    peak = rss_bytes("VmHWM")
    local = sum(p.to_local().numel() * p.to_local().element_size() for p in model.parameters())
    full = sum(p.numel() * p.element_size() for p in model.parameters())
    q = model.hf.get_parameter(probe)
    print(json.dumps({"rank": rank, "before": before, "peak": peak, "local_bytes": local, "full_bytes": full,
                      "q_local_rows": q.to_local().shape[0], "q_rows": q.shape[0],
                      "q_first": q.to_local().float().flatten()[0].item()}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
