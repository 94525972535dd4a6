"""Images for rewards: PNG bytes <-> PIL, and filling ``png`` from image ids with a model's VQ decoder."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import torch
from PIL import Image

from unigen.data.trajectory import Trajectory
from unigen.files import png_bytes
from unigen.models.unified import UnifiedModel


def pil_images(trajectories: list[Trajectory]) -> list[Image.Image | None]:
    """RGB PIL image of each trajectory's ``png``; None where it has none."""
    return [Image.open(io.BytesIO(t.png)).convert("RGB") if t.png is not None else None for t in trajectories]


def pixels_to_pil(pixels: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) pixels in [-1, 1] -> RGB PIL images."""
    arr = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(np.ascontiguousarray(a)) for a in arr]


@torch.no_grad()
def with_decoded_png(trajectories: list[Trajectory], model: UnifiedModel) -> list[Trajectory]:
    """Copies of the trajectories with ``png`` decoded from ``image_tokens`` where missing (inputs untouched).

    Trajectories without image ids keep ``png=None``; ids of the wrong length raise naming the key.
    """
    todo = [i for i, t in enumerate(trajectories) if t.png is None and t.has_image]
    out = list(trajectories)
    if not todo:
        return out
    expected = model.spec.num_image_tokens
    for i in todo:
        if len(trajectories[i].image_tokens) != expected:
            raise ValueError(f"trajectory '{trajectories[i].key}' has {len(trajectories[i].image_tokens)} image ids; "
                             f"the decoder model draws {expected}")
    device = next(model.parameters()).device
    ids = torch.as_tensor(np.stack([trajectories[i].image_tokens for i in todo]), device=device)
    for i, image in zip(todo, pixels_to_pil(model.decode_images(ids))):
        out[i] = dataclasses.replace(trajectories[i], png=png_bytes(image))
    return out
