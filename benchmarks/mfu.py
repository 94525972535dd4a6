"""Model FLOPs utilisation of a training step: padded vs packed, SDPA vs FlashAttention.

Baseline: padded batches with SDPA. Every arm trains on the same samples (``--batch-size`` per
step, reasoning lengths log-normal, image ids after them) with fp32 master weights under bf16
autocast (what Lightning's ``bf16-mixed`` does) and fused AdamW. Model FLOPs count only real
tokens: 6 x (trainable backbone parameters) per token, 6 x head parameters per supervised token
of that head, and 6 x layers x hidden x sum(L_i^2) for causal attention (fwd + bwd); padding and
recomputation are not useful work. MFU = achieved / peak dense bf16 FLOP/s.

    python benchmarks/mfu.py --device cuda                         # Janus-Pro-1B-sized, random init
    python benchmarks/mfu.py --device cuda --batch-size 16 --gradient-checkpointing
    python benchmarks/mfu.py --model janus-tiny --device cpu --steps 2 --pack-length 512 \
        --median-tokens 60 --dtype float32                          # smoke check
"""

from __future__ import annotations

import argparse
import time

import torch

from packed_batches import make_examples  # benchmarks/packed_batches.py (scripts run as `python benchmarks/mfu.py`)
from callbacks.attention import unavailable_reason
from unigen.data.batch import Batch, collate
from unigen.data.sequence import Example
from unigen.losses import IGNORE
from unigen.module import UnifiedLM

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
    backbone = sum(p.numel() for p in hf.model.language_model.parameters() if p.requires_grad)
    backbone -= sum(p.numel() for p in hf.model.language_model.embed_tokens.parameters())  # a lookup, no matmul
    lm_head = sum(p.numel() for p in hf.lm_head.parameters())
    image_head = sum(p.numel() for p in hf.model.generation_head.parameters())
    tokens = sum(len(e.input_ids) for e in examples)
    n_text = sum(sum(t != IGNORE for t in e.text_labels) for e in examples)
    n_image = sum(sum(t != IGNORE for t in e.image_labels) for e in examples)
    attention = 6 * text_cfg.num_hidden_layers * text_cfg.hidden_size * sum(len(e.input_ids) ** 2 for e in examples)
    return 6.0 * (backbone * tokens + lm_head * n_text + image_head * n_image) + attention


def time_steps(module: UnifiedLM, batches: list[Batch], device: str, dtype: torch.dtype) -> float:
    """Seconds per step over ``batches[1:]`` (``batches[0]`` warms up)."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, fused=device.startswith("cuda"))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step(batch: Batch) -> None:
        batch = batch.to(device)
        with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
            text, image = module.heads(batch)
            loss = text.weighted_ce / text.tokens.clamp(min=1) + image.weighted_ce / image.tokens.clamp(min=1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(batches[0])
    sync()
    start = time.perf_counter()
    for batch in batches[1:]:
        step(batch)
    sync()
    return (time.perf_counter() - start) / (len(batches) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="configs/models/janus_pro_1b.yaml")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--batch-size", type=int, default=8, help="samples per step")
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="recompute decoder layers (fits larger batches; recomputation is not counted as useful)")
    parser.add_argument("--pack-length", type=int, default=4096)
    parser.add_argument("--median-tokens", type=int, default=300, help="median reasoning length")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak (default: by GPU name)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    dtype = getattr(torch, args.dtype)
    module = UnifiedLM(model=args.model, gradient_checkpointing=args.gradient_checkpointing)
    with torch.device(args.device):
        module.configure_model()
    module.train()
    n = args.batch_size * (args.steps + 1)
    examples = make_examples(module, n, args.median_tokens, args.seed, args.pack_length)
    chunks = [examples[i:i + args.batch_size] for i in range(0, n, args.batch_size)]
    flops = sum(model_flops(module, c) for c in chunks[1:]) / (len(chunks) - 1)
    peak = peak_tflops(args.device, args.peak_tflops)
    params = sum(p.numel() for p in module.parameters()) / 1e9
    print(f"{args.model}: {params:.2f}B parameters on {args.device} ({args.dtype} autocast), "
          f"{args.batch_size} samples/step, {flops / 1e9:.2f} model GFLOP/step, peak {peak} TFLOP/s")
    arms = [("sdpa", False), ("sdpa", True)]
    for flash in ("flash_attention_2", "flash_attention_3"):
        reason = unavailable_reason(flash, torch.device(args.device), f"{args.dtype}-mixed".replace("bfloat16", "bf16"))
        if reason is None:
            arms += [(flash, False), (flash, True)]
        else:
            print(f"skipping {flash}: {reason}")
    baseline: tuple[str, float] | None = None
    for attn, packed in arms:
        module.net.set_attn_implementation(attn)
        batches = [collate(c, module.spec.pad_id, args.pack_length if packed else None) for c in chunks]
        try:
            seconds = time_steps(module, batches, args.device, dtype)
        except torch.OutOfMemoryError:
            print(f"{attn:>18} {'packed' if packed else 'padded':>6}: out of memory "
                  "(lower --batch-size or add --gradient-checkpointing)")
            module.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            continue
        achieved = flops / seconds / 1e12
        baseline = baseline or (f"{attn} {'packed' if packed else 'padded'}", seconds)
        mfu = f"MFU {achieved / peak:6.1%}" if peak else "MFU n/a (no --peak-tflops)"
        print(f"{attn:>18} {'packed' if packed else 'padded':>6}: {seconds * 1e3:8.1f} ms/step, "
              f"{achieved:8.3f} TFLOP/s, {mfu}, speed vs {baseline[0]} {baseline[1] / seconds:.2f}x")


if __name__ == "__main__":
    main()
