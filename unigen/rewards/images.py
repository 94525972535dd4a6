"""Images for rewards: PNG bytes <-> PIL, and filling ``png`` from image payloads with the model's image head."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import torch
from PIL import Image

from unigen.data.trajectory import Trajectory
from unigen.files import png_bytes
from unigen.models.image import ImagePayloadError
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
    """Copies of the trajectories with ``png`` decoded from ``image_tokens`` where missing (inputs untouched),
    by the model's image head (Janus: the VQ decoder).

    Trajectories without an image keep ``png=None``; a payload that does not fit the model raises naming the key.
    """
    todo = [i for i, t in enumerate(trajectories) if t.png is None and t.has_image]
    out = list(trajectories)
    if not todo:
        return out
    head = model.image_head
    payloads = []
    for i in todo:
        try:
            payloads.append(head.check(trajectories[i].image_tokens))
        except ImagePayloadError as e:
            raise ValueError(f"trajectory '{trajectories[i].key}': {e.detail} (the decoder model's image)") from e
    device = next(model.parameters()).device
    payload = torch.as_tensor(np.stack(payloads), device=device)
    for i, image in zip(todo, pixels_to_pil(head.decode(model, payload))):
        out[i] = dataclasses.replace(trajectories[i], png=png_bytes(image))
    return out
