"""Model FLOPs utilisation of a training step: padded vs packed, SDPA / FlexAttention / FlashAttention.

Baseline: padded batches with SDPA. Every arm trains on the same samples (``--batch-size`` per
step, reasoning lengths log-normal, image ids after them) with fp32 master weights under bf16
autocast (what Lightning's ``bf16-mixed`` does) and fused AdamW. Model FLOPs count only real
tokens: 6 x (trainable backbone parameters) per token, 6 x head parameters per supervised token
of that head, and 6 x layers x hidden x sum(L_i^2) for causal attention (fwd + bwd); padding and
recomputation are not useful work. MFU = achieved / peak dense bf16 FLOP/s.

    python benchmarks/mfu.py --device cuda                         # Janus-Pro-1B-sized, random init
    python benchmarks/mfu.py --device cuda --batch-size 16 --checkpointing selective --compile-layers --logits-chunk 4096
    python benchmarks/mfu.py --model configs/models/janus_pro_7b.yaml --num-layers 12 --batch-size 4   # 7B-wide on one GPU
    torchrun --nproc-per-node 8 benchmarks/mfu.py --model configs/models/janus_pro_7b.yaml            # FSDP2 over 8 GPUs
    python benchmarks/mfu.py --model configs/models/janus_pro_7b.yaml --num-layers 8 --lora-rank 16 --arms sdpa:packed
    python benchmarks/mfu.py --model janus-tiny --device cpu --steps 2 --pack-length 512 \
        --median-tokens 60 --dtype float32                          # smoke check
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import yaml

from packed_batches import make_examples  # benchmarks/packed_batches.py (scripts run as `python benchmarks/mfu.py`)
from callbacks.attention import unavailable_reason
from unigen.data.batch import Batch, collate
from unigen.data.sequence import Example
from unigen.dtypes import CAST_NAMES, torch_dtype
from unigen.optim import adamw
from unigen.losses import IGNORE
from unigen.models.sharded import load_sharded
from unigen.module import UnifiedLM
from unigen.scale.fsdp2 import mixed_precision

PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}
"""Dense bf16 tensor-core peaks (NVIDIA data sheets, no sparsity)."""


def peak_tflops(device: str, override: float | None) -> float | None:
    if override is not None or not device.startswith("cuda"):
        return override
    name = torch.cuda.get_device_name(torch.device(device))
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def model_flops(module: UnifiedLM, examples: list[Example]) -> float:
    """Useful training FLOPs (forward + backward) of one step over ``examples``."""
    hf = module.net.hf
    text_cfg = hf.config.text_config
    backbone = sum(p.numel() for p in hf.model.language_model.parameters())
    backbone -= sum(p.numel() for p in hf.model.language_model.embed_tokens.parameters())  # a lookup, no matmul
    lm_head = sum(p.numel() for p in hf.lm_head.parameters())
    image_head = sum(p.numel() for p in hf.model.generation_head.parameters())
    tokens = sum(len(e.input_ids) for e in examples)
    n_text = sum(sum(t != IGNORE for t in e.text_labels) for e in examples)
    n_image = sum(sum(t != IGNORE for t in e.image_labels) for e in examples)
    attention = 6 * text_cfg.num_hidden_layers * text_cfg.hidden_size * sum(len(e.input_ids) ** 2 for e in examples)
    return 6.0 * (backbone * tokens + lm_head * n_text + image_head * n_image) + attention


def time_steps(module: UnifiedLM, batches: list[Batch], device: str, dtype: torch.dtype) -> float:
    """Seconds per step over ``batches[2:]`` (two warm-up steps: compilation, allocator)."""
    optimizer = adamw(module.parameters(), lr=1e-5, weight_decay=0.0, betas=(0.9, 0.95))  # fused on CUDA
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step(batch: Batch) -> None:
        batch = batch.to(device)
        with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
            text, image = module.heads(batch)
            loss = text.weighted_loss / text.tokens.clamp(min=1) + image.weighted_loss / image.tokens.clamp(min=1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in batches[:2]:
        step(batch)
    sync()
    start = time.perf_counter()
    for batch in batches[2:]:
        step(batch)
    sync()
    return (time.perf_counter() - start) / (len(batches) - 2)


def model_source(path: str, num_layers: int | None) -> str:
    """``path``, or a copy of its architecture YAML with ``num_layers`` decoder layers."""
    if num_layers is None:
        return path
    raw = yaml.safe_load(Path(path).read_text())
    raw["text_config"]["num_hidden_layers"] = num_layers
    out = Path(tempfile.mkdtemp()) / f"{Path(path).stem}-{num_layers}layers.yaml"
    out.write_text(yaml.safe_dump(raw))
    return str(out)


def build(args: argparse.Namespace, device: str) -> UnifiedLM:
    """The module on ``device``; under torchrun (WORLD_SIZE > 1) built on meta and FSDP2-sharded."""
    lora = {"rank": args.lora_rank} if args.lora_rank else None
    module = UnifiedLM(model=model_source(args.model, args.num_layers), gradient_checkpointing=args.checkpointing,
                       compile_layers=args.compile_layers, logits_chunk_size=args.logits_chunk, lora=lora)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        from torch.distributed.device_mesh import init_device_mesh

        mesh = init_device_mesh("cuda", (world,))
        module.net = load_sharded(module.hparams.model, mesh, device, mp_policy=mixed_precision("bf16-mixed"))
        module.apply_training_options()
    else:
        with torch.device(device):
            module.configure_model()
    module.train()
    return module


def arms_to_run(requested: str | None, device: str, dtype: str) -> list[tuple[str, bool]]:
    """(attention, packed) pairs: every kernel that can run here x padded/packed, or ``--arms``."""
    if requested:
        return [(attn, layout == "packed") for attn, layout in (arm.split(":") for arm in requested.split(","))]
    arms = []
    precision = f"{dtype}-mixed".replace("bfloat16", "bf16")
    for attn in ("sdpa", "flex_attention", "flash_attention_2", "flash_attention_3"):
        reason = unavailable_reason(attn, torch.device(device), precision)
        if reason is None:
            arms += [(attn, False), (attn, True)]
        else:
            print(f"skipping {attn}: {reason}")
    return arms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="configs/models/janus_pro_1b.yaml")
    parser.add_argument("--num-layers", type=int, default=None, help="override the decoder depth (fit 7B-wide on one GPU)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=CAST_NAMES)
    parser.add_argument("--batch-size", type=int, default=8, help="samples per step (per GPU)")
    parser.add_argument("--checkpointing", default=False, choices=[False, "full", "selective"],
                        type=lambda v: False if v == "none" else v,
                        help="activation checkpointing: none | full | selective (recomputation is not counted as useful)")
    parser.add_argument("--compile-layers", action="store_true", help="torch.compile each decoder layer")
    parser.add_argument("--logits-chunk", type=int, default=0, help="head logits in chunks of this many positions")
    parser.add_argument("--lora-rank", type=int, default=0, help="train LoRA adapters of this rank instead (0: full)")
    parser.add_argument("--arms", default=None, help="e.g. sdpa:padded,flex_attention:packed (default: all that run)")
    parser.add_argument("--pack-length", type=int, default=4096)
    parser.add_argument("--median-tokens", type=int, default=300, help="median reasoning length")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak (default: by GPU name)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = args.device
    if world > 1:
        dist.init_process_group("nccl")
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    torch.manual_seed(args.seed + dist.get_rank() if world > 1 else args.seed)
    dtype = torch_dtype(args.dtype)
    module = build(args, device)
    n = args.batch_size * (args.steps + 2)
    examples = make_examples(module, n, args.median_tokens, args.seed + (dist.get_rank() if world > 1 else 0),
                             args.pack_length)
    chunks = [examples[i:i + args.batch_size] for i in range(0, n, args.batch_size)]
    flops = sum(model_flops(module, c) for c in chunks[2:]) / (len(chunks) - 2)
    peak = peak_tflops(device, args.peak_tflops)
    params = sum(p.numel() for p in module.parameters()) / 1e9
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad) / 1e9
    say = print if world == 1 or dist.get_rank() == 0 else (lambda *a, **k: None)
    say(f"{module.hparams.model}: {params:.2f}B parameters ({trainable:.3f}B trainable) on {world} x {device} "
        f"({args.dtype} autocast{', FSDP2' if world > 1 else ''}), checkpointing {args.checkpointing or 'none'}, "
        f"compile {args.compile_layers}, logits chunk {args.logits_chunk}, {args.batch_size} samples/step/GPU, "
        f"{flops / 1e9:.2f} model GFLOP/step/GPU, peak {peak} TFLOP/s"
        + (" (LoRA: no weight gradients, so the 6N FLOP count overstates the work)" if args.lora_rank else ""))
    baseline: tuple[str, float] | None = None
    for attn, packed in arms_to_run(args.arms, device, args.dtype):
        layout = "packed" if packed else "padded"
        module.net.set_attn_implementation(attn)
        batches = [collate(c, module.spec.pad_id, args.pack_length if packed else None) for c in chunks]
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        try:
            seconds = time_steps(module, batches, device, dtype)
        except torch.OutOfMemoryError:
            say(f"{attn:>18} {layout:>6}: out of memory (lower --batch-size or use --checkpointing selective)")
            module.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            continue
        achieved = flops / seconds / 1e12
        baseline = baseline or (f"{attn} {layout}", seconds)
        mfu = f"MFU {achieved / peak:6.1%}" if peak else "MFU n/a (no --peak-tflops)"
        memory = f", peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" if device.startswith("cuda") else ""
        say(f"{attn:>18} {layout:>6}: {seconds * 1e3:8.1f} ms/step, {achieved:8.3f} TFLOP/s, {mfu}, "
            f"speed vs {baseline[0]} {baseline[1] / seconds:.2f}x{memory}")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
