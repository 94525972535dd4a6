"""Supervised tokens/s of training steps on packed vs padded batches (baseline: padded).

Both arms train on the same samples, ``--batch-size`` samples per step, steps interleaved: padded
puts one sample per row (padded to the longest in the batch), packed puts several per row (up to
``--pack-length`` tokens) with per-sample position ids. Reasoning lengths follow a log-normal mix
(most short, a long tail), as self-generated reasoning does. Prints the padding fraction, tokens/s
of each and the ratio packed / padded.

    python benchmarks/packed_batches.py                         # CPU, janus-tiny
    python benchmarks/packed_batches.py --model configs/models/janus_pro_1b.yaml --device cuda \
        --dtype bfloat16 --pack-length 4096 --batch-size 16 --median-tokens 300
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch

from unigen.data.batch import Batch, collate
from unigen.data.sequence import Example, build_example
from unigen.data.trajectory import Trajectory
from unigen.dtypes import CAST_NAMES, torch_dtype
from unigen.module import UnifiedLM

WORDS = "the red cube sits left of two small blue spheres while a yellow cone leans on it".split()


def length_mix(n: int, median: int, cap: int, seed: int) -> list[int]:
    """Log-normal reasoning lengths in tokens (sigma 1: p10 ~ median/3.6, p90 ~ 3.6 x median), clipped."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(median), 1.0, n).astype(int), 1, cap).tolist()


def reasoning_text(spec, tokens: int, rng: random.Random) -> str:
    """Random words, about ``tokens`` tokens long (never longer)."""
    words: list[str] = []
    while len(spec.encode_text(" ".join(words + ["x"]))) <= tokens:
        words.append(rng.choice(WORDS))
    return " ".join(words)


def make_examples(module: UnifiedLM, n: int, median_tokens: int, seed: int, max_len: int) -> list[Example]:
    """``n`` unified-mode samples with log-normal reasoning lengths, each at most ``max_len`` tokens."""
    spec, rng = module.spec, random.Random(seed)
    budget = min(spec.max_seq_len, max_len) - spec.image.num_tokens - len(spec.encode_prompt("prompt 000")) - 8
    out = []
    for i, tokens in enumerate(length_mix(n, median_tokens, budget, seed)):
        reasoning = reasoning_text(spec, tokens, rng)
        image = np.array([rng.randrange(spec.image.codebook_size) for _ in range(spec.image.num_tokens)], np.int64)
        out.append(build_example(Trajectory(f"b{i}", 0, f"prompt {i}", reasoning, image), spec, "unified"))
    return out


def make_step(module: UnifiedLM, device: str, dtype: torch.dtype):
    """A function running one training step on a batch; returns (seconds, supervised tokens)."""
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-5)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step(batch: Batch) -> tuple[float, int]:
        batch = batch.to(device)
        sync()
        start = time.perf_counter()
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
            text, image = module.heads(batch)
            loss = text.weighted_loss / text.tokens.clamp(min=1) + image.weighted_loss / image.tokens.clamp(min=1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        return time.perf_counter() - start, int(text.tokens + image.tokens)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="janus-tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=CAST_NAMES)
    parser.add_argument("--attn", default="sdpa", help="sdpa | eager | flash_attention_2 | flash_attention_3")
    parser.add_argument("--batch-size", type=int, default=16, help="samples per step (both arms)")
    parser.add_argument("--pack-length", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--median-tokens", type=int, default=60, help="median reasoning length")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    dtype = torch_dtype(args.dtype)
    module = UnifiedLM(model=args.model, attn_implementation=args.attn)
    module.configure_model()
    module.to(args.device).train()
    n = args.batch_size * (args.steps + 1)
    examples = make_examples(module, n, args.median_tokens, args.seed, args.pack_length)
    lengths = np.array([len(e.input_ids) for e in examples])
    print(f"model {args.model} on {args.device} ({args.dtype}, {args.attn}); {n} samples, "
          f"sequence length p10/p50/p90/max = {np.percentile(lengths, 10):.0f}/{np.median(lengths):.0f}/"
          f"{np.percentile(lengths, 90):.0f}/{lengths.max()}")
    chunks = [examples[i:i + args.batch_size] for i in range(0, n, args.batch_size)]
    arms = {
        "padded": [collate(c, module.spec.pad_id) for c in chunks],
        "packed": [collate(c, module.spec.pad_id, args.pack_length) for c in chunks],
    }
    step = make_step(module, args.device, dtype)
    for name in arms:  # warm-up
        step(arms[name][0])
    times: dict[str, list[float]] = {name: [] for name in arms}
    tokens: dict[str, int] = {name: 0 for name in arms}
    for i in range(1, len(chunks)):  # interleaved, alternating who goes first: fair under a varying load
        for name in (list(arms) if i % 2 else list(arms)[::-1]):
            seconds, n_tokens = step(arms[name][i])
            times[name].append(seconds)
            tokens[name] += n_tokens
    speed = {}
    for name, batches in arms.items():
        slots = np.mean([b.input_ids.numel() for b in batches[1:]])
        rows = np.mean([b.input_ids.shape[0] for b in batches[1:]])
        pad = float(np.mean([b.padding_fraction for b in batches[1:]]))
        speed[name] = tokens[name] / sum(times[name])
        print(f"{name:>6}: {rows:5.1f} rows/step, {slots:8.0f} token slots/step, padding {pad:6.1%}, "
              f"median {np.median(times[name]) * 1e3:7.0f} ms/step, {speed[name]:9.1f} supervised tokens/s")
    median_ratio = np.median(times["padded"]) / np.median(times["packed"])
    print(f"median step-time ratio padded / packed: {median_ratio:.2f}x")
    print(f"ratio packed / padded: {speed['packed'] / speed['padded']:.2f}x")


if __name__ == "__main__":
    main()
