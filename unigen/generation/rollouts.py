"""K sampled trajectories per prompt, with per-(prompt, sample) seeds and decoded PNGs (every
image of an interleaved row: its later turns become the trajectory's ``turns``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from unigen.data.prompts import PromptRecord
from unigen.data.trajectory import Trajectory, Turn
from unigen.files import png_bytes
from unigen.generation.config import SampleResult, SamplingConfig
from unigen.generation.sampler import sample
from unigen.models.unified import UnifiedModel


def sample_seed(seed: int, prompt_id: str, sample_idx: int) -> int:
    """A 31-bit seed from (run seed, prompt id, sample index): stable across batching and resumes."""
    digest = hashlib.sha256(f"{seed}\x00{prompt_id}\x00{sample_idx}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def to_png(pixels: torch.Tensor) -> bytes:
    """(3, H, W) pixels in [-1, 1] -> PNG bytes."""
    return png_bytes(((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy())


def decode_pngs(model: UnifiedModel, images: list[np.ndarray]) -> list[bytes | None]:
    """PNG bytes for every non-empty id array (one decoder call), None for the empty ones."""
    drawn = [i for i, ids in enumerate(images) if len(ids)]
    pngs: list[bytes | None] = [None] * len(images)
    if drawn:
        device = next(model.parameters()).device
        ids = torch.from_numpy(np.stack([images[i] for i in drawn])).to(device)
        with torch.no_grad():
            pixels = model.image_head.decode(model, ids)
        for i, image in zip(drawn, pixels):
            pngs[i] = to_png(image)
    return pngs


def with_pngs(model: UnifiedModel, results: list[SampleResult]) -> list[tuple[bytes | None, list[Turn]]]:
    """Each result's first-image PNG and its later turns with theirs (every image of a row decoded)."""
    images = [r.image_tokens for r in results] + [t.image_tokens for r in results for t in r.turns]
    pngs = iter(decode_pngs(model, images))
    first = [next(pngs) for _ in results]
    return [(png, [replace(t, png=next(pngs)) for t in r.turns]) for png, r in zip(first, results)]


def generate_trajectories(
    model: UnifiedModel,
    records: list[PromptRecord],
    samples_per_prompt: int,
    config: SamplingConfig,
    seed: int,
    model_id: str,
    decode_png: bool = True,
    batch_size: int = 32,
    on_batch: Callable[[list[SampleResult]], None] | None = None,
) -> list[Trajectory]:
    """``samples_per_prompt`` trajectories per record, record-major, sampled ``batch_size`` rows at a time.

    Sample k of prompt p uses seed ``sample_seed(seed, p.id, k)``, so a trajectory does not depend
    on which other rows shared its batch. ``on_batch`` sees each batch's results (progress bars).
    """
    if samples_per_prompt < 1 or batch_size < 1:
        raise ValueError("samples_per_prompt and batch_size must be >= 1")
    jobs = [(r, k) for r in records for k in range(samples_per_prompt)]
    out: list[Trajectory] = []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        seeds = [sample_seed(seed, r.id, k) for r, k in chunk]
        results = sample(model, [r.prompt for r, _ in chunk], config, seeds=seeds)
        decoded = with_pngs(model, results) if decode_png else [(None, r.turns) for r in results]
        for (record, k), row_seed, result, (png, turns) in zip(chunk, seeds, results, decoded):
            out.append(Trajectory(
                prompt_id=record.id,
                sample_idx=k,
                prompt=record.prompt,
                reasoning=result.reasoning,
                image_tokens=result.image_tokens,
                category=record.category,
                metadata=record.metadata,
                mode=config.mode,
                generation={**config.as_dict(), "seed": row_seed, "run_seed": seed, "switched": result.switched,
                            "stop": result.stop, "reasoning_tokens": len(result.reasoning_ids)},
                model=model_id,
                png=png,
                turns=turns,
            ))
        if on_batch is not None:
            on_batch(results)
    return out
