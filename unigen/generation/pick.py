"""Choosing the next token from logits: filtering, guidance and per-row reproducible noise.

Sampling is Gumbel-max (``argmax(logits / T + g)``, g ~ Gumbel) with noise from a counter-based
hash of (row seed, step, stream, vocabulary index). Each row therefore draws from its own random
stream: its samples do not depend on which other rows share the batch, on batch size or on the
device's RNG state, and no per-row ``torch.Generator`` calls are needed in the decoding loop.
"""

from __future__ import annotations

from typing import Protocol

import torch

_MASK32 = 0xFFFFFFFF
TEXT_STREAM, IMAGE_STREAM = 1, 2


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """murmur3's 32-bit finaliser on int64 tensors holding values in [0, 2^32)."""
    x = x ^ (x >> 16)
    x = (x * 0x85EBCA6B) & _MASK32
    x = x ^ (x >> 13)
    x = (x * 0xC2B2AE35) & _MASK32
    return x ^ (x >> 16)


def row_keys(seeds: list[int], device: torch.device | str) -> torch.Tensor:
    """(R, 1) hashed per-row keys from integer seeds."""
    raw = torch.tensor([s & _MASK32 for s in seeds], dtype=torch.int64, device=device)
    return _mix32(raw)[:, None]


def gumbel_noise(keys: torch.Tensor, steps: torch.Tensor, stream: int, size: int) -> torch.Tensor:
    """(S, R, size) float32 Gumbel noise for S steps, a pure function of (key, step, stream, column)."""
    salt = ((steps * 4 + stream) * 0x9E3779B1) & _MASK32
    cols = torch.arange(size, device=keys.device, dtype=torch.int64) * 0x27D4EB2F
    x = _mix32(_mix32((keys[None] ^ salt[:, None, None]) & _MASK32) ^ (cols & _MASK32))
    uniform = ((x >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))
    return -torch.log(-torch.log(uniform))


class Noise(Protocol):
    """The rows' Gumbel noise: ``at(step, stream, size)`` is ``gumbel_noise`` at that step, (R, size)."""

    keys: torch.Tensor

    def at(self, step, stream: int, size: int) -> torch.Tensor: ...


class NoiseBlocks:
    """Gumbel noise per (stream, step), computed for a block of upcoming steps at once.

    The values are exactly ``gumbel_noise`` at that step; blocking only amortises the per-op cost
    over steps (bounded to ~``max_elements`` floats per block).
    """

    def __init__(self, keys: torch.Tensor, max_elements: int = 1 << 22):
        self.keys, self.max_elements = keys, max_elements
        self.blocks: dict[int, tuple[int, torch.Tensor]] = {}

    def at(self, step: int, stream: int, size: int) -> torch.Tensor:
        start, block = self.blocks.get(stream, (0, None))
        if block is None or not start <= step < start + block.shape[0] or block.shape[-1] != size:
            length = max(1, min(32, self.max_elements // (self.keys.shape[0] * size)))
            steps = torch.arange(step, step + length, device=self.keys.device)
            start, block = step, gumbel_noise(self.keys, steps, stream, size)
            self.blocks[stream] = (start, block)
        return block[step - start]


class StepNoise:
    """Gumbel noise of the step held in a 0-d device tensor, computed on the device without reading
    the step on the host (for the static-shape, CUDA-graph decode step)."""

    def __init__(self, keys: torch.Tensor):
        self.keys = keys

    def at(self, step: torch.Tensor, stream: int, size: int) -> torch.Tensor:
        return gumbel_noise(self.keys, step.view(1), stream, size)[0]


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits per row (0 = all)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability reaches p (the top token always stays)."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    drop_sorted = probs.cumsum(-1) - probs > p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def choose(
    logits: torch.Tensor,
    noise: Noise,
    step: int | torch.Tensor,
    stream: int,
    greedy: bool,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
) -> torch.Tensor:
    """(R, V) logits -> (R,) token ids: argmax when greedy, else filtered Gumbel-max sampling."""
    logits = logits.float()
    if greedy:
        return logits.argmax(-1)
    logits = top_p_filter(top_k_filter(logits / temperature, top_k), top_p)
    return (logits + noise.at(step, stream, logits.shape[-1])).argmax(-1)
